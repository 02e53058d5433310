//! The keystore through its public functions: keys stored once, opened with
//! their password only, files bounded, writes private.

use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{KdfParams, KeyFile, Keypair};
use tranche_keystore::{open_key_file, read_bounded, write_private_atomically, Keystore};

fn sealed(password: &str) -> (Keypair, KeyFile) {
    let key = Keypair::generate(&mut OsRng);
    let file = KeyFile::seal(&key, password.as_bytes(), KdfParams::MIN, &mut OsRng).unwrap();
    (key, file)
}

#[test]
fn a_stored_key_opens_with_its_password_and_no_other() {
    let home = tempfile::tempdir().unwrap();
    let store = Keystore::new(home.path());
    let (key, file) = sealed("correct horse battery");
    let path = store.create("alice", &file).unwrap();
    let pw = home.path().join("pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    let opened = open_key_file(&path, Some(&pw)).unwrap();
    assert_eq!(opened.public_key(), key.public_key());

    std::fs::write(&pw, "wrong horse battery\n").unwrap();
    assert!(open_key_file(&path, Some(&pw)).is_err());
    // A key is never overwritten.
    let err = store.create("alice", &sealed("another one").1).unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    assert_eq!(store.list().unwrap().keys.len(), 1);
}

#[test]
fn names_that_are_not_plain_file_names_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let store = Keystore::new(home.path());
    let file = sealed("correct horse battery").1;
    for name in ["", "../escape", ".hidden", "a/b", &"x".repeat(65)] {
        assert!(store.create(name, &file).is_err(), "{name:?} accepted");
    }
}

#[test]
fn oversized_files_are_refused_and_writes_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    write_private_atomically(&path, &[b'x'; 100]).unwrap();
    assert_eq!(read_bounded(&path, 100).unwrap().len(), 100);
    let err = read_bounded(&path, 99).unwrap_err();
    assert!(
        format!("{err:#}").contains("larger than 99 bytes"),
        "{err:#}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
