//! The word-vector backend on the real GloVe 6B 50d files (scripts/fetch-models.sh glove): the
//! Fortran-order .npy and the Parquet word list give the official vectors, and the backend
//! answers embed queries with them (errors for unknown words and for other query kinds).

#![allow(clippy::unwrap_used)]

use audit_core::{Answer, Backend, Case, Generation, Query};
use runners::word_vectors::WordVectorBackend;

fn glove() -> WordVectorBackend {
    let dir = fixtures::models().join("glove-6b-50d");
    assert!(
        dir.exists(),
        "{} is missing: run `scripts/fetch-models.sh glove` (or set PROBITY_MODELS)",
        dir.display()
    );
    assert!(WordVectorBackend::recognises(&dir));
    WordVectorBackend::load(&dir).unwrap()
}

fn case(texts: &[&str]) -> Case {
    Case {
        id: "t".into(),
        probe: "p".into(),
        attributes: Default::default(),
        query: Query::Embed {
            texts: texts.iter().map(|t| t.to_string()).collect(),
        },
    }
}

#[test]
fn glove_6b_50d_loads_with_the_official_vectors() {
    let mut backend = glove();
    let vectors = backend.vectors();
    assert_eq!(vectors.len(), 400_000);
    assert_eq!(vectors.dim(), 50);
    assert!(vectors.uncased);
    // glove.6B.50d.txt, first line: "the 0.418 0.24968 -0.41242 0.1217 0.34527 …" and the last
    // value -0.78581; reading the Fortran-order array as C order would give other numbers.
    let the = vectors.vector("the").unwrap();
    assert_eq!(&the[..5], &[0.418, 0.24968, -0.41242, 0.1217, 0.34527]);
    assert_eq!(the[49], -0.78581);
    // numpy's reading of the same files (np.load, pyarrow): "flower" starts 0.075439 1.2659 -1.3179.
    let flower = vectors.vector("Flower").unwrap();
    assert_eq!(&flower[..3], &[0.075439, 1.2659, -1.3179]);
    assert!(vectors.vector("gladiola").is_none());

    let info = backend.model();
    assert_eq!(info.files.len(), 2);
    assert!(info
        .files
        .iter()
        .any(|f| f.sha256 == "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15"));

    let cases = [case(&["flower", "The flower."]), case(&["gladiola"])];
    let refs: Vec<&Case> = cases.iter().collect();
    let answers = backend.answer(&refs, &Generation::default()).unwrap();
    let Answer::Embeddings(got) = &answers[0] else {
        panic!("{:?}", answers[0]);
    };
    assert_eq!(got[0], flower);
    let period = backend.vectors().vector(".").unwrap();
    for j in 0..50 {
        let mean = (f64::from(the[j]) + f64::from(flower[j]) + f64::from(period[j])) / 3.0;
        assert_eq!(got[1][j], mean as f32);
    }
    assert!(matches!(&answers[1], Answer::Error(e) if e.contains("`gladiola`")));

    let chat = Case {
        query: Query::Chat {
            system: None,
            history: Vec::new(),
            prompt: "hi".into(),
        },
        ..case(&[])
    };
    let answers = backend.answer(&[&chat], &Generation::default()).unwrap();
    assert!(matches!(&answers[0], Answer::Error(e) if e.contains("embed queries only")));
}

#[test]
fn a_folder_without_vectors_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!WordVectorBackend::recognises(dir.path()));
    std::fs::write(dir.path().join("v.npy"), b"\x93NUMPY\x01\x00\x02\x00{\n").unwrap();
    std::fs::write(dir.path().join("w.parquet"), b"not parquet").unwrap();
    assert!(WordVectorBackend::recognises(dir.path()));
    let error = WordVectorBackend::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("v.npy"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}
