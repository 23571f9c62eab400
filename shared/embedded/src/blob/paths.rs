//! Object keys as files: `a/b/c.csv` is `<root>/a.d/b.d/c.csv.blob`. Suffixing both kinds of
//! name means a directory name can never equal a file name, so keys `a` and `a/b` (both legal in
//! S3) coexist; anything else in the tree (temporary files) is invisible to listings.

use std::path::{Path, PathBuf};

use puhui_ports::BlobMeta;

/// Suffix of a directory holding the keys under one segment.
const DIR_SUFFIX: &str = ".d";
/// Suffix of an object's file.
const FILE_SUFFIX: &str = ".blob";

/// The file that holds `key` (already checked with `puhui_ports::blob::check_key`).
pub(crate) fn object_path(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    let (dirs, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
    if key.contains('/') {
        for segment in dirs.split('/') {
            path.push(format!("{segment}{DIR_SUFFIX}"));
        }
    }
    path.push(format!("{name}{FILE_SUFFIX}"));
    path
}

/// A name for a temporary file next to an object: it ends in neither suffix, so listings skip it.
pub(crate) fn temp_name() -> String {
    format!(".tmp-{}", ulid::Ulid::new())
}

/// Every object under `dir` (which holds the keys starting with `key_prefix`) whose key starts
/// with `filter`. Directories that cannot hold such keys are not entered.
pub(crate) fn walk(
    dir: &Path,
    key_prefix: &str,
    filter: &str,
    out: &mut Vec<BlobMeta>,
) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        // Names that are not UTF-8 were not written by this store.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // An object deleted while we list is simply not listed.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir()
            && let Some(segment) = name.strip_suffix(DIR_SUFFIX)
        {
            let sub = format!("{key_prefix}{segment}/");
            if sub.starts_with(filter) || filter.starts_with(&sub) {
                walk(&entry.path(), &sub, filter, out)?;
            }
        } else if meta.is_file()
            && let Some(segment) = name.strip_suffix(FILE_SUFFIX)
        {
            let key = format!("{key_prefix}{segment}");
            if key.starts_with(filter) {
                out.push(BlobMeta {
                    key,
                    size: meta.len(),
                });
            }
        }
    }
    Ok(())
}

/// Percent-encodes a key for a URL path: unreserved characters and `/` stay as they are.
pub(crate) fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded path; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn decode_key(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| hex::decode(hex).ok())?;
            out.extend(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_sub_keys_get_distinct_paths() {
        let root = Path::new("/r");
        assert_eq!(object_path(root, "a"), Path::new("/r/a.blob"));
        assert_eq!(object_path(root, "a/b"), Path::new("/r/a.d/b.blob"));
        assert_eq!(object_path(root, "a//b/"), Path::new("/r/a.d/.d/b.d/.blob"));
    }

    #[test]
    fn percent_coding_round_trips() {
        for key in ["exports/export 1.csv", "统一/社会?&=#%", "a+b~c"] {
            let encoded = encode_key(key);
            assert!(!encoded.contains([' ', '?', '&', '#', '+']), "{encoded}");
            assert_eq!(decode_key(&encoded).as_deref(), Some(key));
        }
        assert_eq!(decode_key("a%2"), None);
        assert_eq!(decode_key("a%zz"), None);
        assert_eq!(decode_key("%FF"), None);
        assert_eq!(decode_key("%E4%B8"), None);
    }
}
