//! Calibre export parser (in progress).

use crate::{ImportError, Rows};
use std::io::Read;

pub(crate) fn parse_csv(_reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    Err(ImportError::Unrecognised("not implemented yet".into()))
}

pub(crate) fn parse_opf(_reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    Err(ImportError::Unrecognised("not implemented yet".into()))
}
