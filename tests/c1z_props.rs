//! Property test: whatever users and roles the connector maps, the c1z writer stores them so that the independent
//! test reader gets back exactly the same objects, with referential integrity.

mod common;

use std::collections::BTreeMap;

use baton_torq::c1z::{C1zWriter, WriterOptions};
use baton_torq::connector::{self, role, user};
use baton_torq::torq::{RoleRecord, UserRecord, UserStatus};
use common::c1z_reader::{pb, C1zReader};
use proptest::prelude::*;

fn status() -> impl Strategy<Value = UserStatus> {
    prop_oneof![
        Just(UserStatus::Verified),
        Just(UserStatus::InvitationSent),
        Just(UserStatus::Unspecified),
        "[A-Z_]{1,12}".prop_map(UserStatus::Other),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn writer_round_trips_through_the_independent_reader(
        roles in prop::collection::btree_map("[a-z0-9-]{1,20}", (".{0,40}", ".{0,60}"), 0..6),
        users in prop::collection::btree_map("[a-z0-9-]{1,36}", (".{0,60}", any::<prop::sample::Index>(), status(), any::<bool>()), 0..40),
    ) {
        let roles: Vec<RoleRecord> = roles
            .into_iter()
            .map(|(id, (name, description))| RoleRecord { id, name, description, ..Default::default() })
            .collect();
        let users: Vec<UserRecord> = users
            .into_iter()
            .map(|(id, (email, role_pick, status, sso))| UserRecord {
                id,
                email,
                role_id: if roles.is_empty() { "no-role".into() } else { roles[role_pick.index(roles.len())].id.clone() },
                status,
                sso_provision: sso,
                ..Default::default()
            })
            .collect();

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.c1z");
        let mut w = C1zWriter::create(&file, WriterOptions::default()).unwrap();
        for t in connector::resource_types() {
            w.put_resource_type(&t).unwrap();
        }
        for r in &roles {
            let res = role::role_resource(r, None);
            w.put_resource(&res).unwrap();
            w.put_entitlement(&role::member_entitlement(r, &res)).unwrap();
        }
        for u in &users {
            prop_assert!(w.put_resource(&user::user_resource(u)).unwrap().is_written());
            if let Some(g) = user::role_grant(u) {
                w.put_grant(&g).unwrap();
            }
        }
        let dangling = w.remove_dangling_grants().unwrap();
        prop_assert_eq!(dangling.len(), if roles.is_empty() { users.len() } else { 0 });
        w.finish().unwrap();

        let reader = C1zReader::open(&file);
        let sync_id = reader.default_sync_id();
        reader.check_integrity(&sync_id);
        let got: BTreeMap<String, pb::Resource> =
            reader.resources(&sync_id).into_iter().map(|r| (r.external_id.clone(), r.data)).collect();
        prop_assert_eq!(got.len(), users.len() + roles.len());
        for u in &users {
            let r = &got[&format!("user:{}", u.id)];
            let expected_name = if u.email.is_empty() { &u.id } else { &u.email };
            prop_assert_eq!(&r.display_name, expected_name);
            let t: pb::UserTrait = pb::find_annotation(&r.annotations, pb::USER_TRAIT_URL).unwrap();
            prop_assert_eq!(&t.login, &u.email);
            prop_assert_eq!(t.sso_status.map(|s| s.sso_enabled), Some(u.sso_provision));
        }
        for role in &roles {
            let r = &got[&format!("role:{}", role.id)];
            prop_assert_eq!(&r.description, &role.description);
        }
        let grants = reader.grants(&sync_id);
        prop_assert_eq!(grants.len(), if roles.is_empty() { 0 } else { users.len() });
        prop_assert_eq!(reader.entitlements(&sync_id).len(), roles.len());
    }
}
