//! Local accounts: password policy and hashing, web sessions, personal access tokens, login throttling.
