//! Line endings turned into `\n` before CSV parsing, so rejected rows name their true line.
//!
//! The csv crate accepts `\r\n` and a bare `\r` as record terminators, but it counts lines by
//! `\n`. It also reports a record's line before the `\n` of a `\r\n` ending is read. After
//! Windows or old Mac line endings its line numbers therefore run short. Reading through
//! [`UnixLineEndings`] gives it `\n` only. Bytes inside a quoted field are left alone, so a
//! `\r` in a name still reaches the checks that reject it.

use std::io::{self, Read};

/// A reader that turns `\r\n` and a bare `\r` outside quoted fields into `\n`.
#[derive(Debug)]
pub(crate) struct UnixLineEndings<R> {
    inner: R,
    /// Inside a quoted field: an odd number of `"` so far (an escaped `""` counts twice).
    in_quotes: bool,
    /// The last byte read was a `\r`, already written out as `\n`; a `\n` right after it is
    /// dropped.
    after_carriage_return: bool,
}

impl<R: Read> UnixLineEndings<R> {
    pub(crate) fn new(inner: R) -> UnixLineEndings<R> {
        UnixLineEndings {
            inner,
            in_quotes: false,
            after_carriage_return: false,
        }
    }
}

impl<R: Read> Read for UnixLineEndings<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let read = self.inner.read(buffer)?;
            if read == 0 {
                return Ok(0);
            }
            let mut written = 0;
            for index in 0..read {
                let byte = buffer[index];
                if byte == b'"' {
                    self.in_quotes = !self.in_quotes;
                }
                if self.in_quotes {
                    self.after_carriage_return = false;
                    buffer[written] = byte;
                    written += 1;
                    continue;
                }
                if byte == b'\n' && self.after_carriage_return {
                    self.after_carriage_return = false;
                    continue;
                }
                self.after_carriage_return = byte == b'\r';
                buffer[written] = if byte == b'\r' { b'\n' } else { byte };
                written += 1;
            }
            // A chunk that was a single dropped `\n` is not the end of the input.
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
                let size = self.1.min(buffer.len()).min(self.0.len());
                buffer[..size].copy_from_slice(&self.0[..size]);
                self.0 = &self.0[size..];
                Ok(size)
            }
        }
        let mut output = Vec::new();
        UnixLineEndings::new(Chunks(input, chunk))
            .read_to_end(&mut output)
            .unwrap();
        output
    }

    #[test]
    fn quoted_carriage_returns_kept() {
        let input = b"a,\"x\ry\r\n\"\r\nb";
        for chunk in 1..=input.len() {
            assert_eq!(convert(input, chunk), b"a,\"x\ry\r\n\"\nb", "chunk {chunk}");
        }
    }

    #[test]
    fn line_endings_become_newlines() {
        let input = b"a\r\nb\rc\nd\r\r\ne";
        for chunk in 1..=input.len() {
            assert_eq!(convert(input, chunk), b"a\nb\nc\nd\n\ne", "chunk {chunk}");
        }
    }
}
