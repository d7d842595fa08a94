//! rbase64 2.0's API over the base64 crate (standard alphabet, padded), without declaring a
//! global allocator. See this crate's Cargo.toml for why it stands in for rbase64.

use std::fmt;

use base64::Engine as _;

/// `input` in base64: the standard alphabet, padded with `=`.
#[must_use]
pub fn encode(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// The bytes `encoded` holds.
///
/// # Errors
/// [`DecodeError::InvalidByte`] naming the first byte outside the alphabet (or misplaced
/// padding).
pub fn decode(encoded: &str) -> Result<Vec<u8>, DecodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => {
                DecodeError::InvalidByte(encoded.as_bytes()[at])
            }
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                DecodeError::InvalidByte(b'=')
            }
        })
}

/// Why [`decode`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    InvalidByte(u8),
}

impl std::error::Error for DecodeError {}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Self::InvalidByte(byte) => write!(f, "Invalid non-base64 byte '{}'", byte as char),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_rbase64_does() {
        assert_eq!(encode(b"Hello!"), "SGVsbG8h");
        assert_eq!(encode(b"0123456789"), "MDEyMzQ1Njc4OQ==");
        assert_eq!(encode(b"  "), "ICA=");
        assert_eq!(encode(b""), "");
    }

    #[test]
    fn decodes_what_it_encodes_and_names_a_bad_byte() {
        assert_eq!(
            decode("MDEyMzQ1Njc4OQ==").as_deref(),
            Ok(&b"0123456789"[..])
        );
        assert_eq!(decode("SGV*bG8h"), Err(DecodeError::InvalidByte(b'*')));
    }
}
