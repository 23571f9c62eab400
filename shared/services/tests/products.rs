//! Product-listing use cases on the embedded table: tenancy, roles, optimistic concurrency,
//! lifecycle, and the catalogue's filters, order, paging and validity window.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use puhui_domain::{BankId, Error, Principal, ProductDraft, ProductId, ProductStatus, Role};
use puhui_embedded::SqliteTable;
use puhui_ports::{ManualClock, UlidGenerator};
use puhui_services::{CatalogueFilter, PageRequest, ProductService};
use serde_json::json;

fn service(at: &str) -> (ProductService, Arc<ManualClock>) {
    let dir = std::env::temp_dir().join(format!("puhui-svc-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = Arc::new(SqliteTable::open(dir.join("t.db")).unwrap());
    let clock = Arc::new(ManualClock::new(at.parse::<DateTime<Utc>>().unwrap()));
    (
        ProductService::new(table, clock.clone(), Arc::new(UlidGenerator::default())),
        clock,
    )
}

fn admin(bank: &str) -> Principal {
    Principal {
        subject: format!("{bank}-admin"),
        bank_id: Some(BankId::parse(bank).unwrap()),
        roles: vec![Role::ProductAdmin],
    }
}

fn draft(name: &str, min_rate: i32, max_amount: i64, regions: &[&str]) -> ProductDraft {
    serde_json::from_value(json!({
        "name": name, "product_type": "credit",
        "amount": {"min": 1_000_000, "max": max_amount},
        "term_months": {"min": 1, "max": 36},
        "annual_rate_bp": {"min": min_rate, "max": min_rate + 300},
        "regions": regions, "industries": ["C"],
        "valid_from": "2026-01-01", "valid_to": "2026-12-31"
    }))
    .unwrap()
}

#[tokio::test]
async fn another_bank_cannot_see_or_touch_a_product() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let p = svc
        .create(&admin("nbcb"), draft("A", 400, 100_000_000, &[]))
        .await
        .unwrap();
    let rival = admin("icbc-nb");
    assert!(matches!(
        svc.get(&rival, p.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        svc.replace(&rival, p.id, 1, draft("B", 400, 100_000_000, &[]))
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        svc.set_status(&rival, p.id, ProductStatus::Listed, None)
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(
        svc.list_own(&rival, None, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Drafts never reach the public catalogue.
    assert!(
        svc.catalogue(CatalogueFilter::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(svc.get(&admin("nbcb"), p.id).await.unwrap(), p);
}

#[tokio::test]
async fn only_product_admins_with_a_bank_may_write() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let mut officer = admin("nbcb");
    officer.roles = vec![Role::LoanOfficer];
    assert!(matches!(
        svc.create(&officer, draft("A", 400, 100_000_000, &[]))
            .await,
        Err(Error::Forbidden(_))
    ));
    let platform = Principal {
        subject: "ops".into(),
        bank_id: None,
        roles: vec![Role::ProductAdmin, Role::PlatformAdmin],
    };
    assert!(matches!(
        svc.create(&platform, draft("A", 400, 100_000_000, &[]))
            .await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn invalid_drafts_are_refused_before_anything_is_written() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let bad = draft("A", 400, 1, &[]); // max below min
    assert!(matches!(
        svc.create(&admin("nbcb"), bad).await,
        Err(Error::Validation(_))
    ));
    assert!(
        svc.list_own(&admin("nbcb"), None, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn stale_versions_are_refused_and_nothing_is_lost() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let me = admin("nbcb");
    let p = svc
        .create(&me, draft("A", 400, 100_000_000, &[]))
        .await
        .unwrap();
    let v2 = svc
        .replace(&me, p.id, 1, draft("A2", 400, 100_000_000, &[]))
        .await
        .unwrap();
    assert_eq!((v2.version, v2.terms.name.as_str()), (2, "A2"));
    let err = svc
        .replace(&me, p.id, 1, draft("lost update", 400, 100_000_000, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PreconditionFailed {
                expected: 1,
                current: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(svc.get(&me, p.id).await.unwrap().terms.name, "A2");
    // Status moves are checked too, and bump the version.
    let err = svc
        .set_status(&me, p.id, ProductStatus::Listed, Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed { .. }), "{err:?}");
    let listed = svc
        .set_status(&me, p.id, ProductStatus::Listed, Some(2))
        .await
        .unwrap();
    assert_eq!((listed.status, listed.version), (ProductStatus::Listed, 3));
    assert!(matches!(
        svc.set_status(&me, p.id, ProductStatus::Listed, None).await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn concurrent_updates_from_one_version_let_exactly_one_through() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let svc = Arc::new(svc);
    let me = admin("nbcb");
    let p = svc
        .create(&me, draft("A", 400, 100_000_000, &[]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (svc, me) = (svc.clone(), me.clone());
            tokio::spawn(async move {
                svc.replace(
                    &me,
                    p.id,
                    1,
                    draft(&format!("writer {i}"), 400, 100_000_000, &[]),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::PreconditionFailed { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(svc.get(&me, p.id).await.unwrap().version, 2);
}

#[tokio::test]
async fn catalogue_filters_sorts_pages_and_drops_expired_products_by_itself() {
    let (svc, clock) = service("2026-06-01T02:00:00Z");
    let nbcb = admin("nbcb");
    let icbc = admin("icbc-nb");
    let mut ids = Vec::new();
    for (who, name, rate, max, regions) in [
        (&nbcb, "cheap-ningbo", 300, 100_000_000, vec!["330200"]),
        (&icbc, "dear-haishu", 500, 500_000_000, vec!["330203"]),
        (&nbcb, "mid-anywhere", 400, 300_000_000, vec![]),
        (&icbc, "hangzhou-only", 250, 100_000_000, vec!["330100"]),
    ] {
        let p = svc
            .create(who, draft(name, rate, max, &regions))
            .await
            .unwrap();
        svc.set_status(who, p.id, ProductStatus::Listed, None)
            .await
            .unwrap();
        ids.push(p.id);
    }
    let names = |l: &puhui_services::Listing<puhui_services::products::CatalogueEntry>| {
        l.items.iter().map(|e| e.name.clone()).collect::<Vec<_>>()
    };
    let haishu = CatalogueFilter {
        region: Some("330203".parse().unwrap()),
        ..CatalogueFilter::default()
    };
    assert_eq!(
        names(&svc.catalogue(haishu.clone()).await.unwrap()),
        vec!["cheap-ningbo", "mid-anywhere", "dear-haishu"]
    );
    let big = CatalogueFilter {
        amount: Some(puhui_domain::Fen(200_000_000)),
        ..haishu.clone()
    };
    assert_eq!(
        names(&svc.catalogue(big).await.unwrap()),
        vec!["mid-anywhere", "dear-haishu"]
    );
    let by_bank = CatalogueFilter {
        bank: Some(BankId::parse("icbc-nb").unwrap()),
        ..CatalogueFilter::default()
    };
    assert_eq!(
        names(&svc.catalogue(by_bank).await.unwrap()),
        vec!["hangzhou-only", "dear-haishu"]
    );
    let wrong_industry = CatalogueFilter {
        industry: Some("F".parse().unwrap()),
        ..CatalogueFilter::default()
    };
    assert!(
        svc.catalogue(wrong_industry)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Paging walks the sorted list exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = svc
            .catalogue(CatalogueFilter {
                limit: Some(1),
                cursor,
                ..CatalogueFilter::default()
            })
            .await
            .unwrap();
        seen.extend(names(&page));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            "hangzhou-only",
            "cheap-ningbo",
            "mid-anywhere",
            "dear-haishu"
        ]
    );
    let bad = CatalogueFilter {
        cursor: Some("garbage!".into()),
        ..CatalogueFilter::default()
    };
    assert!(matches!(
        svc.catalogue(bad).await,
        Err(Error::Validation(_))
    ));
    // A forged cursor far past the end is an empty last page, not an overflow.
    let far = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!("o:{}", usize::MAX),
    );
    let page = svc
        .catalogue(CatalogueFilter {
            cursor: Some(far),
            ..CatalogueFilter::default()
        })
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.next_cursor.is_none());

    // valid_to is 2026-12-31 (Shanghai). At 15:59 UTC on the 31st it is still listed; at 16:00
    // UTC it is 1 January in Shanghai and every product has left the catalogue by itself.
    clock.set("2026-12-31T15:59:59Z".parse().unwrap());
    assert_eq!(
        svc.catalogue(CatalogueFilter::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    clock.set("2026-12-31T16:00:00Z".parse().unwrap());
    assert!(
        svc.catalogue(CatalogueFilter::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Their owners still see them, still listed.
    let own = svc
        .list_own(&nbcb, Some(ProductStatus::Listed), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(own.items.len(), 2);
    let _: Vec<ProductId> = ids;
}

#[tokio::test]
async fn own_listing_pages_and_filters_by_status() {
    let (svc, _) = service("2026-06-01T02:00:00Z");
    let me = admin("nbcb");
    for i in 0..5 {
        let p = svc
            .create(&me, draft(&format!("P{i}"), 400, 100_000_000, &[]))
            .await
            .unwrap();
        if i % 2 == 0 {
            svc.set_status(&me, p.id, ProductStatus::Listed, None)
                .await
                .unwrap();
        }
    }
    let page = svc
        .list_own(
            &me,
            None,
            PageRequest {
                limit: Some(2),
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = svc
        .list_own(
            &me,
            None,
            PageRequest {
                limit: Some(10),
                cursor: page.next_cursor,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert!(rest.next_cursor.is_none());
    let listed = svc
        .list_own(&me, Some(ProductStatus::Listed), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.terms.name.as_str())
            .collect::<Vec<_>>(),
        vec!["P0", "P2", "P4"]
    );
    assert!(matches!(
        svc.list_own(
            &me,
            None,
            PageRequest {
                limit: Some(0),
                cursor: None
            }
        )
        .await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        svc.list_own(
            &me,
            None,
            PageRequest {
                limit: Some(5),
                cursor: Some("zzz".into())
            }
        )
        .await,
        Err(Error::Validation(_))
    ));
}
