//! openlibrary export parser (in progress).

use crate::{ImportError, Rows};
use std::io::Read;

pub(crate) fn parse(_reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    Err(ImportError::Unrecognised("not implemented yet".into()))
}
