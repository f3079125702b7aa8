//! Throughput benchmark for the c1z writer: N realistic user resources, R roles with entitlements and one
//! grant per user, written the way a sync does (types, users, roles + entitlements, grants, dangling-grant
//! check, finish). Prints per-phase wall time, rows/s, file size and peak RSS.
//!
//! Run in release: `cargo run --release --example c1z_write_bench`
//! Env: `C1Z_BENCH_USERS` (default 1000000), `C1Z_BENCH_ROLES` (100), `C1Z_BENCH_LEVEL` (zstd level, default
//! from `WriterOptions`), `C1Z_BENCH_RUNS` (syncs into the same file, default 1; 2 measures carry-over),
//! `C1Z_BENCH_OUT` (output path, default a temp dir), `C1Z_BENCH_SKIP_DANGLING` (set: skip the dangling check).

use std::collections::BTreeMap;
use std::time::Instant;

use baton_torq::c1z::{C1zWriter, WriterOptions};
use baton_torq::proto::connector_v2 as v2;
use prost::Message;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn skip_uuid(&mut self) {
        self.next();
        self.next();
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

fn any<M: Message>(name: &str, m: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/c1.connector.v2.{name}"), value: m.encode_to_vec() }
}

fn s(v: &str) -> prost_types::Value {
    prost_types::Value { kind: Some(prost_types::value::Kind::StringValue(v.to_string())) }
}

fn rid(t: &str, id: &str) -> v2::ResourceId {
    v2::ResourceId { resource_type: t.into(), resource: id.into(), baton_resource: false }
}

fn user(i: u64, uid: &str) -> v2::Resource {
    let email = format!("user.number{i}@example-corp.com");
    let created = prost_types::Timestamp { seconds: 1_650_000_000 + (i as i64 % 10_000_000), nanos: 0 };
    let mut fields = BTreeMap::new();
    fields.insert("user_id".to_string(), s(uid));
    fields.insert("login".to_string(), s(&email));
    fields.insert("email".to_string(), s(&email));
    fields.insert(
        "sso_provisioned".to_string(),
        prost_types::Value { kind: Some(prost_types::value::Kind::BoolValue(i.is_multiple_of(3))) },
    );
    fields.insert("status".to_string(), s("VERIFIED"));
    fields.insert("created_time".to_string(), s("2023-04-15T10:11:12.123456Z"));
    let profile = prost_types::Struct { fields };
    let trait_ = v2::UserTrait {
        emails: vec![v2::user_trait::Email { address: email.clone(), is_primary: true }],
        status: Some(v2::user_trait::Status {
            status: v2::user_trait::status::Status::Enabled as i32,
            details: "VERIFIED".into(),
        }),
        profile: Some(profile.clone()),
        account_type: v2::user_trait::AccountType::Human as i32,
        login: email.clone(),
        created_at: Some(created),
        last_login: Some(prost_types::Timestamp { seconds: 1_760_000_000 + (i as i64 % 1_000_000), nanos: 0 }),
        sso_status: Some(v2::user_trait::SsoStatus { sso_enabled: i.is_multiple_of(3) }),
        ..Default::default()
    };
    v2::Resource {
        id: Some(rid("user", uid)),
        display_name: email,
        annotations: vec![any("UserTrait", &trait_)],
        // Newer readers: the latest SDK copies profile, status and created_at onto the resource too.
        profile: Some(profile),
        status: Some(v2::ResourceStatus {
            status: v2::resource_status::Status::Enabled as i32,
            details: "VERIFIED".into(),
        }),
        created_at: Some(created),
        ..Default::default()
    }
}

fn role(i: u64, id: &str) -> v2::Resource {
    let mut fields = BTreeMap::new();
    fields.insert("role_id".to_string(), s(id));
    fields.insert("role_name".to_string(), s(&format!("Role {i}")));
    fields.insert("role_description".to_string(), s(&format!("Members can do the things of role {i}")));
    v2::Resource {
        id: Some(rid("role", id)),
        display_name: format!("Role {i}"),
        annotations: vec![any("RoleTrait", &v2::RoleTrait { profile: Some(prost_types::Struct { fields }) })],
        ..Default::default()
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) used by this process so far, from /proc/self/stat (Linux, 100 Hz ticks).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|st| {
            let rest = st.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("baton_torq=debug")),
        )
        .with_writer(std::io::stderr)
        .init();
    let n = env_num("C1Z_BENCH_USERS", 1_000_000);
    let roles = env_num("C1Z_BENCH_ROLES", 100).max(1);
    let runs = env_num("C1Z_BENCH_RUNS", 1).max(1);
    let mut opts = WriterOptions::default();
    if let Ok(l) = std::env::var("C1Z_BENCH_LEVEL") {
        opts.zstd_level = l.parse()?;
    }
    let tmp = tempfile::tempdir()?;
    let target =
        std::env::var("C1Z_BENCH_OUT").map(std::path::PathBuf::from).unwrap_or_else(|_| tmp.path().join("bench.c1z"));
    println!(
        "c1z bench: {n} users, {roles} roles, {n} grants, zstd level {}, {runs} run(s), out {}",
        opts.zstd_level,
        target.display()
    );

    for run in 1..=runs {
        let t0 = Instant::now();
        let c0 = cpu_secs();
        let mut w = C1zWriter::create(&target, opts.clone())?;
        let t_create = t0.elapsed();

        let user_type = v2::ResourceType {
            id: "user".into(),
            display_name: "User".into(),
            traits: vec![v2::resource_type::Trait::User as i32],
            annotations: vec![any("SkipEntitlementsAndGrants", &v2::SkipEntitlementsAndGrants {})],
            ..Default::default()
        };
        let role_type = v2::ResourceType {
            id: "role".into(),
            display_name: "Role".into(),
            traits: vec![v2::resource_type::Trait::Role as i32],
            ..Default::default()
        };
        w.put_resource_type(&user_type)?;
        w.put_resource_type(&role_type)?;

        let t = Instant::now();
        let c_users = cpu_secs();
        let mut rng = SplitMix(42);
        for i in 0..n {
            let uid = rng.uuid();
            w.put_resource(&user(i, &uid))?;
        }
        let t_users = t.elapsed();
        let c_users = cpu_secs() - c_users;

        let t = Instant::now();
        let mut rng_roles = SplitMix(7);
        let role_res: Vec<v2::Resource> = (0..roles).map(|i| role(i, &rng_roles.uuid())).collect();
        for r in &role_res {
            w.put_resource(r)?;
            let id = &r.id.as_ref().ok_or("role id")?.resource;
            w.put_entitlement(&v2::Entitlement {
                resource: Some(r.clone()),
                id: format!("role:{id}:member"),
                display_name: format!("{} Role member", r.display_name),
                description: format!("Member of {} Torq role", r.display_name),
                grantable_to: vec![user_type.clone()],
                purpose: v2::entitlement::PurposeValue::Assignment as i32,
                slug: "member".into(),
                ..Default::default()
            })?;
        }
        let t_roles = t.elapsed();

        // Grants come per role (ListGrants per role), users in API order within it.
        let t = Instant::now();
        let c_grants = cpu_secs();
        for (ri, r) in role_res.iter().enumerate() {
            let id = &r.id.as_ref().ok_or("role id")?.resource;
            let ent =
                v2::Entitlement { resource: Some(r.clone()), id: format!("role:{id}:member"), ..Default::default() };
            let mut rng = SplitMix(42);
            for i in 0..n {
                if i % roles != ri as u64 {
                    rng.skip_uuid();
                    continue;
                }
                let uid = rng.uuid();
                w.put_grant(&v2::Grant {
                    entitlement: Some(ent.clone()),
                    principal: Some(v2::Resource { id: Some(rid("user", &uid)), ..Default::default() }),
                    id: format!("role:{id}:member:user:{uid}"),
                    ..Default::default()
                })?;
            }
        }
        let t_grants = t.elapsed();
        let c_grants = cpu_secs() - c_grants;

        let t = Instant::now();
        let c_dangling = cpu_secs();
        let dangling = if std::env::var_os("C1Z_BENCH_SKIP_DANGLING").is_some() {
            Vec::new()
        } else {
            w.remove_dangling_grants()?
        };
        let t_dangling = t.elapsed();
        let c_dangling = cpu_secs() - c_dangling;
        let counts = w.counts();

        let t = Instant::now();
        let c_finish = cpu_secs();
        let done = w.finish()?;
        let t_finish = t.elapsed();
        let c_finish = cpu_secs() - c_finish;
        let c_total = cpu_secs() - c0;
        let total = t0.elapsed();
        println!(
            "run {run}: CPU seconds (user+sys; independent of other load): users {c_users:.2}, grants {c_grants:.2}, \
             dangling {c_dangling:.2}, finish {c_finish:.2}, total {c_total:.2}"
        );
        let rows = counts.resource_types + counts.resources + counts.entitlements + counts.grants;
        println!(
            "run {run}: create {:.2}s (carried over: {}), users {:.2}s ({:.0} rows/s), roles+ents {:.3}s, \
             grants {:.2}s ({:.0} rows/s), dangling check {:.2}s ({} removed), finish {:.2}s",
            t_create.as_secs_f64(),
            done.previous_sync_id.is_some(),
            t_users.as_secs_f64(),
            n as f64 / t_users.as_secs_f64(),
            t_roles.as_secs_f64(),
            t_grants.as_secs_f64(),
            n as f64 / t_grants.as_secs_f64(),
            t_dangling.as_secs_f64(),
            dangling.len(),
            t_finish.as_secs_f64(),
        );
        println!(
            "run {run}: total {:.2}s, {rows} rows, {:.0} rows/s overall, file {} bytes ({:.2} MiB), peak RSS {:.1} MiB",
            total.as_secs_f64(),
            rows as f64 / total.as_secs_f64(),
            done.bytes,
            done.bytes as f64 / (1024.0 * 1024.0),
            peak_rss_mib()
        );
    }
    Ok(())
}
