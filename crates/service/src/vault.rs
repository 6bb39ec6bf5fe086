//! The vault's key-encryption key (KEK): from `CONSENTRY_KEK`, or else from a key file made with mode 0600
//! on first start. The KEK wraps every subject's data key (see `consentry_store::vault`); it lives in this
//! process's memory and that file only, never in a database, so a copy of the databases reads nothing.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use consentry_store::vault::Kek;
use zeroize::Zeroizing;

use crate::StartError;

/// A KEK from base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
pub fn parse_kek(text: &str) -> Option<Kek> {
    let text = text.trim();
    let decoded = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)?;
    let bytes: [u8; 32] = decoded.as_slice().try_into().ok()?;
    Some(Kek::new(bytes))
}

/// The configured KEK: `given` (`CONSENTRY_KEK`), else the key file at `path`, made when missing.
pub fn load_kek(given: Option<&str>, path: &Path) -> Result<Kek, StartError> {
    if let Some(text) = given {
        return parse_kek(text)
            .ok_or_else(|| StartError::Other("CONSENTRY_KEK must be the base64 of exactly 32 bytes".into()));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => read_key_file(path, &Zeroizing::new(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(path),
        Err(e) => Err(StartError::Other(format!("cannot read the key file {}: {e}", path.display()))),
    }
}

fn read_key_file(path: &Path, text: &str) -> Result<Kek, StartError> {
    warn_if_readable_by_others(path);
    parse_kek(text).ok_or_else(|| {
        StartError::Other(format!("the key file {} must hold the base64 of exactly 32 bytes", path.display()))
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the vault's key file is accessible to other users; make it mode 0600");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn create_key_file(path: &Path) -> Result<Kek, StartError> {
    let fail = |what: &str, e: std::io::Error| {
        StartError::Other(format!("cannot {what} the key file {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| fail("make the folder of", e))?;
    }
    let kek = Kek::generate()?;
    let text = Zeroizing::new(format!("{}\n", STANDARD.encode(kek.expose())));
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Made by another process meanwhile: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| fail("read", e))?;
            return read_key_file(path, &Zeroizing::new(text));
        }
        Err(e) => return Err(fail("create", e)),
    };
    file.write_all(text.as_bytes()).map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("write", e))?;
    tracing::info!(file = %path.display(), "made the vault's key-encryption key; keep a copy apart from the backups");
    Ok(kek)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base64_of_32_bytes_only() {
        let kek = Kek::generate().expect("kek");
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let parsed = parse_kek(&engine.encode(kek.expose())).expect("parses");
            assert_eq!(parsed.id(), kek.id());
        }
        assert!(parse_kek(&STANDARD.encode([0u8; 31])).is_none());
        assert!(parse_kek("not base64 at all!").is_none());
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("data").join("kek");
        let first = load_kek(None, &path).expect("made");
        let again = load_kek(None, &path).expect("read");
        assert_eq!(first.id(), again.id(), "the same key on the next start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let given = STANDARD.encode([7u8; 32]);
        assert_eq!(
            load_kek(Some(&given), &path).expect("env").id(),
            Kek::new([7u8; 32]).id(),
            "CONSENTRY_KEK wins"
        );
        std::fs::write(&path, "short").expect("write");
        assert!(load_kek(None, &path).is_err(), "a bad key file stops the start");
    }
}
