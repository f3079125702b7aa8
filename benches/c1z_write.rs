//! Writer benchmark: the c1z writer alone, without HTTP or JSON streaming. A generated workspace (the
//! simulator's generator, the same one the sync benchmark serves) is mapped by the connector's own mapping
//! functions and written the way a sync writes it: resource types, roles with their `member` entitlements, then
//! each user followed by its grant (non-SSO users, then SSO users), the dangling-grant check, and `finish`
//! (indexes, compression, rename). Prints the writer's time per phase, rows per second, CPU seconds, file size
//! and peak RSS. Generating and mapping the rows is not counted in the phase times.
//!
//! Run: `cargo bench --bench c1z_write`. Settings from the environment: `C1Z_BENCH_USERS` (default 1000000),
//! `C1Z_BENCH_ROLES` (100), `C1Z_BENCH_SSO_PERCENT` (30), `C1Z_BENCH_LEVEL` (zstd level, default from
//! `WriterOptions`), `C1Z_BENCH_RUNS` (syncs into the same file, default 1; 2 measures the carried-over sync),
//! `C1Z_BENCH_OUT` (output path, default a temporary directory).

use std::time::{Duration, Instant};

use baton_torq::c1z::C1zError;
use baton_torq::c1z::{C1zWriter, WriterOptions};
use baton_torq::connector::syncer::Row;
use baton_torq::connector::{self, role, user};
use baton_torq::sim::{GeneratedSpec, SimRole, SimUser, Workspace};
use baton_torq::sync::peak_rss_bytes;
use baton_torq::torq::{RoleRecord, UserRecord};

type Error = Box<dyn std::error::Error>;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The simulator's user as the Torq client reads it: through its JSON, as in a real sync.
fn user_record(u: &SimUser) -> Result<UserRecord, Error> {
    Ok(serde_json::from_slice(&serde_json::to_vec(u)?)?)
}

fn role_record(r: &SimRole) -> Result<RoleRecord, Error> {
    Ok(serde_json::from_slice(&serde_json::to_vec(r)?)?)
}

/// Writes a row as the sync's writer loop does: the resource, its entitlements, its grants.
fn put_row(w: &mut C1zWriter, row: &Row) -> Result<(), C1zError> {
    w.put_resource(&row.resource)?;
    for e in &row.entitlements {
        w.put_entitlement(e)?;
    }
    for g in &row.grants {
        w.put_grant(g)?;
    }
    Ok(())
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

/// Runs `f` and adds its wall time to `total`.
fn timed<T>(total: &mut Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    *total += started.elapsed();
    out
}

fn main() -> Result<(), Error> {
    let users = env_num("C1Z_BENCH_USERS", 1_000_000);
    let roles = env_num("C1Z_BENCH_ROLES", 100).clamp(1, u64::from(u32::MAX)) as u32;
    let sso_percent = env_num("C1Z_BENCH_SSO_PERCENT", 30).min(100) as u8;
    let runs = env_num("C1Z_BENCH_RUNS", 1).max(1);
    let mut opts = WriterOptions::default();
    if let Ok(level) = std::env::var("C1Z_BENCH_LEVEL") {
        opts.zstd_level = level.parse()?;
    }
    let tmp = tempfile::tempdir()?;
    let target =
        std::env::var("C1Z_BENCH_OUT").map(std::path::PathBuf::from).unwrap_or_else(|_| tmp.path().join("bench.c1z"));
    let ws = Workspace::generated(GeneratedSpec { users, roles, sso_percent, seed: 42, ..GeneratedSpec::default() });
    println!(
        "c1z write bench: {users} users ({sso_percent}% SSO), {roles} roles, zstd level {}, {runs} run(s), out {}",
        opts.zstd_level,
        target.display()
    );

    for run in 1..=runs {
        let (started, cpu_started) = (Instant::now(), cpu_secs());
        let mut w = C1zWriter::create(&target, opts.clone())?;
        let t_create = started.elapsed();

        let mut t_roles = Duration::ZERO;
        for t in connector::resource_types() {
            timed(&mut t_roles, || w.put_resource_type(&t))?;
        }
        let roles = ws.roles().iter().map(role_record).collect::<Result<Vec<_>, _>>()?;
        for row in role::role_rows(&roles, None) {
            timed(&mut t_roles, || put_row(&mut w, &row))?;
        }

        let mut t_users = Duration::ZERO;
        let cpu_users = cpu_secs();
        for sso in [false, true] {
            for u in ws.users(sso) {
                let row = user::user_row(&user_record(&u)?);
                timed(&mut t_users, || put_row(&mut w, &row))?;
            }
        }
        let cpu_users = cpu_secs() - cpu_users;

        let (t, c) = (Instant::now(), cpu_secs());
        let dangling = w.remove_dangling_grants()?;
        let (t_dangling, cpu_dangling) = (t.elapsed(), cpu_secs() - c);
        let counts = w.counts();

        let (t, c) = (Instant::now(), cpu_secs());
        let done = w.finish()?;
        let (t_finish, cpu_finish) = (t.elapsed(), cpu_secs() - c);
        let (total, cpu_total) = (started.elapsed(), cpu_secs() - cpu_started);

        let rows = counts.resource_types + counts.resources + counts.entitlements + counts.grants;
        let writer = t_create + t_roles + t_users + t_dangling + t_finish;
        println!(
            "run {run}: writer {:.2} s for {rows} rows ({:.0} rows/s): create {:.3} s (carried over: {}), types+roles \
             {:.3} s, users+grants {:.2} s ({:.0} rows/s), dangling check {:.2} s ({} removed), finish {:.2} s",
            writer.as_secs_f64(),
            rows as f64 / writer.as_secs_f64(),
            t_create.as_secs_f64(),
            done.previous_sync_id.is_some(),
            t_roles.as_secs_f64(),
            t_users.as_secs_f64(),
            (counts.resources + counts.grants) as f64 / t_users.as_secs_f64(),
            t_dangling.as_secs_f64(),
            dangling.len(),
            t_finish.as_secs_f64(),
        );
        println!(
            "run {run}: CPU seconds (user+sys, including row generation): users+grants {cpu_users:.2}, dangling \
             {cpu_dangling:.2}, finish {cpu_finish:.2}, total {cpu_total:.2}; wall {:.2} s",
            total.as_secs_f64()
        );
        println!(
            "run {run}: file {} bytes ({:.2} MiB), peak RSS {:.1} MiB",
            done.bytes,
            done.bytes as f64 / (1024.0 * 1024.0),
            peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
