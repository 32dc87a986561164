//! Just enough of the GraphQL executable-document grammar for the fake Hardcover server:
//! one operation, fields with aliases, arguments (literals and `$variables`) and selection
//! sets. Fragments and directives are refused rather than half-supported, so a client that
//! starts using them finds out here instead of against the real API.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub kind: OpKind,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Map<String, Value>,
    pub selection: Vec<Field>,
}

impl Field {
    /// The key the field's value appears under in the response.
    pub fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    vars: &'a Map<String, Value>,
}

/// Parses `src`, resolving `$variables` from `vars` (a missing variable reads as `null`).
pub fn parse(src: &str, vars: &Map<String, Value>) -> Result<Document, String> {
    let mut p = Parser {
        src: src.as_bytes(),
        pos: 0,
        vars,
    };
    p.skip_ignored();
    let kind = if p.peek() == Some(b'{') {
        OpKind::Query
    } else {
        let word = p.name()?;
        let kind = match word.as_str() {
            "query" => OpKind::Query,
            "mutation" => OpKind::Mutation,
            "subscription" => return Err("subscriptions are not supported".into()),
            "fragment" => return Err("fragments are not supported by the fake".into()),
            other => return Err(format!("unexpected '{other}' at the start of the document")),
        };
        p.skip_ignored();
        if p.peek().is_some_and(is_name_start) {
            p.name()?;
            p.skip_ignored();
        }
        if p.peek() == Some(b'(') {
            p.skip_balanced(b'(', b')')?;
            p.skip_ignored();
        }
        kind
    };
    let fields = p.selection_set()?;
    p.skip_ignored();
    if p.pos < p.src.len() {
        return Err("only one operation per document is supported by the fake".into());
    }
    Ok(Document { kind, fields })
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ignored(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.pos += 1;
            } else if b == b'#' {
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == b'\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        self.skip_ignored();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at offset {}",
                char::from(b),
                self.pos
            ))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip_ignored();
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return Err(format!("expected a name at offset {start}"));
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    fn skip_balanced(&mut self, open: u8, close: u8) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == open {
                depth += 1;
            } else if b == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
            }
        }
        Err("unbalanced brackets".into())
    }

    fn selection_set(&mut self) -> Result<Vec<Field>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        loop {
            self.skip_ignored();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(fields);
                }
                Some(b'.') => return Err("fragments are not supported by the fake".into()),
                Some(b'@') => return Err("directives are not supported by the fake".into()),
                Some(_) => fields.push(self.field()?),
                None => return Err("unterminated selection set".into()),
            }
        }
    }

    fn field(&mut self) -> Result<Field, String> {
        let first = self.name()?;
        self.skip_ignored();
        let (alias, name) = if self.peek() == Some(b':') {
            self.pos += 1;
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        self.skip_ignored();
        let mut args = Map::new();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            loop {
                self.skip_ignored();
                if self.peek() == Some(b')') {
                    self.pos += 1;
                    break;
                }
                let key = self.name()?;
                self.expect(b':')?;
                let value = self.value()?;
                args.insert(key, value);
            }
            self.skip_ignored();
        }
        if self.peek() == Some(b'@') {
            return Err("directives are not supported by the fake".into());
        }
        let selection = if self.peek() == Some(b'{') {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(Field {
            alias,
            name,
            args,
            selection,
        })
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ignored();
        match self.peek() {
            Some(b'$') => {
                self.pos += 1;
                let name = self.name()?;
                Ok(self.vars.get(&name).cloned().unwrap_or(Value::Null))
            }
            Some(b'"') => self.string(),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ignored();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut obj = Map::new();
                loop {
                    self.skip_ignored();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Value::Object(obj));
                    }
                    let key = self.name()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    obj.insert(key, v);
                }
            }
            Some(b) if b == b'-' || b.is_ascii_digit() => self.number(),
            Some(b) if is_name_start(b) => {
                let word = self.name()?;
                Ok(match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    // Enum values (`asc`, `desc`) travel as strings.
                    _ => Value::String(word),
                })
            }
            _ => Err(format!("expected a value at offset {}", self.pos)),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.pos += 1;
        }
        let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        serde_json::from_str::<Value>(&text).map_err(|_| format!("bad number '{text}'"))
    }

    fn string(&mut self) -> Result<Value, String> {
        // GraphQL string escapes are a subset of JSON's, so JSON decodes them.
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos += 1,
                b'"' => {
                    let text = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                    return serde_json::from_str(&text).map_err(|e| format!("bad string: {e}"));
                }
                _ => {}
            }
        }
        Err("unterminated string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_dossier_library_query() {
        let q = r"query MyLibrary($uid: Int!, $limit: Int!, $offset: Int!) {
          user_books(where: {user_id: {_eq: $uid}}, order_by: {id: asc}, limit: $limit, offset: $offset) {
            id book_id
            user_book_reads(order_by: {id: desc}, limit: 1) { id started_at }
            book { id title image { url } }
          }
        }";
        let vars = json!({"uid": 7, "limit": 50, "offset": 100});
        let doc = parse(q, vars.as_object().unwrap()).unwrap();
        assert_eq!(doc.kind, OpKind::Query);
        let f = &doc.fields[0];
        assert_eq!(f.name, "user_books");
        assert_eq!(f.args["where"], json!({"user_id": {"_eq": 7}}));
        assert_eq!(f.args["order_by"], json!({"id": "asc"}));
        assert_eq!(f.args["offset"], json!(100));
        assert_eq!(f.selection.len(), 4);
        assert_eq!(f.selection[2].args["limit"], json!(1));
    }

    #[test]
    fn parses_aliases_strings_and_mutations() {
        let q = r#"mutation { a: update_user_book(id: 5, object: {rating: 4.5, review_raw: "a \"q\""}) { id error } }"#;
        let doc = parse(q, &Map::new()).unwrap();
        assert_eq!(doc.kind, OpKind::Mutation);
        assert_eq!(doc.fields[0].response_key(), "a");
        assert_eq!(
            doc.fields[0].args["object"],
            json!({"rating": 4.5, "review_raw": "a \"q\""})
        );
    }
}
