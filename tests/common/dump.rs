//! A readable text dump of one sync in a c1z, for snapshot tests: one block per object, sorted by id within each
//! table (rows of concurrently listed types arrive in no fixed order), annotations decoded where the test reader
//! knows their message, timestamps in RFC 3339. A mapping change then shows up as one diff against the reviewed
//! snapshot.

use std::fmt::Write as _;

use super::c1z_reader::{pb, C1zReader};

/// The dump of sync `sync_id`.
pub fn dump(reader: &C1zReader, sync_id: &str) -> String {
    let mut out = String::new();
    section(
        &mut out,
        "resource types",
        reader.resource_types(sync_id).iter().map(|t| {
            let d = &t.data;
            format!(
                "{} {:?} traits={:?}{}{}",
                d.id,
                d.display_name,
                d.traits,
                field(" description", &d.description),
                annotations(&d.annotations)
            )
        }),
    );
    section(&mut out, "resources", reader.resources(sync_id).iter().map(|r| resource(&r.data)));
    section(
        &mut out,
        "entitlements",
        reader.entitlements(sync_id).iter().map(|e| {
            let d = &e.data;
            let grantable: Vec<&str> = d.grantable_to.iter().map(|t| t.id.as_str()).collect();
            format!(
                "{} {:?}{} slug={} purpose={} resource={} grantable_to={grantable:?}{}",
                d.id,
                d.display_name,
                field(" description", &d.description),
                d.slug,
                d.purpose,
                d.resource.as_ref().map(resource_id).unwrap_or_default(),
                annotations(&d.annotations)
            )
        }),
    );
    section(
        &mut out,
        "grants",
        reader.grants(sync_id).iter().map(|g| {
            let d = &g.data;
            let entitlement = d.entitlement.as_ref();
            format!(
                "{} entitlement={} on={} principal={}{}",
                d.id,
                entitlement.map(|e| e.id.as_str()).unwrap_or_default(),
                entitlement.and_then(|e| e.resource.as_ref()).map(resource_id).unwrap_or_default(),
                d.principal.as_ref().map(resource_id).unwrap_or_default(),
                annotations(&d.annotations)
            )
        }),
    );
    out
}

fn section(out: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let mut items: Vec<String> = items.collect();
    items.sort();
    let _ = writeln!(out, "== {title} ({})", items.len());
    for item in items {
        let _ = writeln!(out, "{item}");
    }
}

fn resource_id(r: &pb::Resource) -> String {
    r.id.as_ref().map(|id| format!("{}:{}", id.resource_type, id.resource)).unwrap_or_default()
}

fn resource(r: &pb::Resource) -> String {
    let mut s = format!("{} {:?}{}", resource_id(r), r.display_name, field(" description", &r.description));
    if let Some(st) = &r.status {
        let _ = write!(s, " status={}{}", st.status, details(&st.details));
    }
    if let Some(t) = &r.created_at {
        let _ = write!(s, " created_at={}", time(t));
    }
    if let Some(p) = &r.profile {
        let _ = write!(s, "\n  profile {}", profile(p));
    }
    for a in &r.annotations {
        s.push_str("\n  ");
        s.push_str(&annotation(a));
    }
    s
}

fn annotations(anns: &[pb::Any]) -> String {
    anns.iter().map(|a| format!(" [{}]", annotation(a))).collect()
}

fn annotation(a: &pb::Any) -> String {
    let name = a.type_url.rsplit('.').next().unwrap_or(&a.type_url);
    if a.type_url == pb::USER_TRAIT_URL {
        if let Some(t) = pb::find_annotation::<pb::UserTrait>(std::slice::from_ref(a), pb::USER_TRAIT_URL) {
            let emails: Vec<String> =
                t.emails.iter().map(|e| format!("{}{}", e.address, if e.is_primary { "*" } else { "" })).collect();
            let status = t.status.as_ref().map(|s| format!("{}{}", s.status, details(&s.details)));
            return format!(
                "UserTrait emails={emails:?} login={:?} account_type={} status={} sso={} created_at={} last_login={}\n    \
                 profile {}",
                t.login,
                t.account_type,
                status.unwrap_or_else(|| "-".into()),
                t.sso_status.as_ref().map(|s| s.sso_enabled.to_string()).unwrap_or_else(|| "-".into()),
                t.created_at.as_ref().map(time).unwrap_or_else(|| "-".into()),
                t.last_login.as_ref().map(time).unwrap_or_else(|| "-".into()),
                t.profile.as_ref().map(profile).unwrap_or_default()
            );
        }
    }
    if a.type_url == pb::ROLE_TRAIT_URL {
        if let Some(t) = pb::find_annotation::<pb::RoleTrait>(std::slice::from_ref(a), pb::ROLE_TRAIT_URL) {
            return format!("RoleTrait profile {}", t.profile.as_ref().map(profile).unwrap_or_default());
        }
    }
    if a.value.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({} bytes)", a.value.len())
    }
}

fn profile(p: &pb::Struct) -> String {
    let fields: Vec<String> = p.fields.iter().map(|(k, v)| format!("{k}={}", value(v))).collect();
    format!("{{{}}}", fields.join(", "))
}

fn value(v: &pb::Value) -> String {
    use pb::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => "null".into(),
        Some(Kind::NumberValue(n)) => n.to_string(),
        Some(Kind::StringValue(s)) => format!("{s:?}"),
        Some(Kind::BoolValue(b)) => b.to_string(),
        Some(Kind::StructValue(s)) => profile(s),
        Some(Kind::ListValue(l)) => format!("[{}]", l.values.iter().map(value).collect::<Vec<_>>().join(", ")),
    }
}

fn time(t: &pb::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{}.{:09}", t.seconds, t.nanos))
}

/// ` "details"`, or nothing when empty.
fn details(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" {d:?}")
    }
}

fn field(label: &str, value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("{label}={value:?}")
    }
}
