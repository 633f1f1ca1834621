//! The offline default end to end: the committed archives become at least 3 000 clean 64×64
//! logos and at least 9 000 training images, as the course promises.

use logogan::data::pipeline::{build_dataset, DatasetConfig};
use logogan::paths::{project_root, DataLayout};

#[test]
fn vendored_logos_give_three_thousand_clean_and_nine_thousand_training_images() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        project_root().join("data/vendor"),
        dir.path().join("vendor"),
    )
    .unwrap();
    let layout = DataLayout::new(dir.path());
    let report = build_dataset(&layout, &DatasetConfig::with_augmentation(), false).unwrap();

    let sources: Vec<_> = report
        .unpacked
        .iter()
        .map(|s| (s.id.as_str(), s.total))
        .collect();
    assert_eq!(
        sources,
        [("simple-icons", 3470), ("fontawesome-brands", 609)]
    );
    assert_eq!(report.clean.rows.len(), 4079);
    assert!(report.clean.kept >= 3000, "{}", report.clean.table());
    assert!(report.train_images >= 9000, "{}", report.train_images);
    assert_eq!(report.train_images, 3 * report.clean.kept);
    // The vendored SVGs are well-formed: every drop is a rule's verdict, never a broken file.
    assert!(
        report.clean.rows.iter().all(|r| !r.is_bad_input()),
        "{}",
        report.clean.table()
    );
    println!("{}", report.clean.table());
}
