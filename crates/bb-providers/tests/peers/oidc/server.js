// A real OAuth 2 / OpenID Connect authorization server (panva/oidc-provider) for the
// bb-providers peer tests. Test-only: binds 127.0.0.1, uses throwaway keys, accepts any login.
//
// Usage: node server.js [PORT]   (or OIDC_PEER_PORT=PORT; default 0 = pick a free port)
// Prints `OIDC_PEER_LISTENING port=<n>` on stdout once it accepts connections, and exits when
// its stdin closes, so a test that dies never leaves a server behind.
//
// Configured as a strict provider so the tests prove our client copes with one:
// PKCE required for every client (even confidential ones), refresh tokens rotated on every use
// (a replayed one revokes the whole grant), `iss` in every authorization response (RFC 9207),
// revocation (RFC 7009) and introspection (RFC 7662) on.

import http from 'node:http';
import Provider from 'oidc-provider';

// Every character RFC 6749 2.3.1 makes a client form-encode before HTTP Basic: `:` would split
// the credentials, `+` would turn into a space, `%` would start an escape.
const CLIENT_SECRET = 'peer:secret+with%25odd chars/ok?';
const REDIRECT_URIS = [
  'http://127.0.0.1:8080/oauth/callback/oidc-peer',
];

const port = Number(process.argv[2] ?? process.env.OIDC_PEER_PORT ?? 0);
const server = http.createServer();

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const issuer = `http://127.0.0.1:${actual}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'bookbridge-basic',
        client_secret: CLIENT_SECRET,
        redirect_uris: REDIRECT_URIS,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        // A native (desktop) client, as the CLI's `connect` is: public, PKCE only, and a
        // loopback redirect URI whose port may be any (RFC 8252 7.3).
        client_id: 'bookbridge-native',
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/oauth/callback/oidc-peer'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      {
        client_id: 'bookbridge-post',
        client_secret: CLIENT_SECRET,
        redirect_uris: REDIRECT_URIS,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    // The default only requires PKCE for public clients; bookbridge sends it always and the
    // peer insists, so a regression that drops it fails loudly.
    pkce: { required: () => true },
    // Rotate on every refresh, not only after 70% of the lifetime (the default), so a
    // double-spent refresh token is detected — and punished by revoking the grant.
    rotateRefreshToken: true,
    scopes: ['openid', 'offline_access', 'profile'],
    claims: { openid: ['sub'], profile: ['name'] },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: `Reader ${sub}` };
        },
      };
    },
    features: {
      devInteractions: { enabled: true },
      // Each client may revoke and introspect only its own tokens.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => !token || token.clientId === client.clientId,
      },
    },
    cookies: { keys: ['bookbridge-peer-test-only-cookie-key'] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
  });

  server.on('request', provider.callback());
  process.stdout.write(`OIDC_PEER_LISTENING port=${actual}\n`);
});

server.on('error', (err) => {
  process.stderr.write(`oidc peer: ${err.message}\n`);
  process.exit(1);
});

// The parent test holds our stdin open; EOF means it is gone.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
