//! ConductorOne client credentials: parsing the client id (`<name>@<tenant-host>/<suffix>`) and the client secret
//! (`secret-token:conductorone.com:v1:<base64url JWK>` holding an Ed25519 private key), and signing the JWT client
//! assertion used by the token exchange.
//!
//! Must not: echo any part of the secret in an error, log it, or show it in `Debug`. Intermediate copies of the
//! key material are zeroized; the signing key zeroizes itself on drop.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use secrecy::zeroize::{Zeroize as _, Zeroizing};
use secrecy::{ExposeSecret as _, SecretString};

/// How far `nbf` lies before and `exp` after the issue time of a client assertion.
const ASSERTION_SKEW: Duration = Duration::from_secs(120);

/// What is wrong with a credential. Messages describe the expected shape, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CredentialError(pub String);

/// A parsed ConductorOne client id, e.g. `strange-hydra-68836@acme.conductor.one/pcc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientId {
    full: String,
    name: String,
    tenant_host: String,
}

impl ClientId {
    /// Splits once on `@`, then the right side once on `/`; every part must be non-empty and the host a plain
    /// DNS name (no scheme, path or spaces).
    pub(crate) fn parse(raw: &str) -> Result<ClientId, CredentialError> {
        const SHAPE: &str = "expected <name>@<tenant-host>/<suffix>, e.g. strange-hydra-68836@acme.conductor.one/pcc";
        let full = raw.trim();
        let bad = |why: &str| CredentialError(format!("{why}; {SHAPE}"));
        let (name, rest) = full.split_once('@').ok_or_else(|| bad("it has no '@'"))?;
        let (host, suffix) = rest.split_once('/').ok_or_else(|| bad("it has no '/' after the tenant host"))?;
        if name.is_empty() || host.is_empty() || suffix.is_empty() {
            return Err(bad("a part is empty"));
        }
        if full.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err(bad("the tenant host is not a plain host name"));
        }
        Ok(ClientId { full: full.to_owned(), name: name.to_owned(), tenant_host: host.to_ascii_lowercase() })
    }

    /// The whole id, as sent in `client_id`, `iss` and `sub`.
    pub(crate) fn as_str(&self) -> &str {
        &self.full
    }

    /// The part before `@`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The tenant host (token and API host unless overridden; always the assertion's audience).
    pub(crate) fn tenant_host(&self) -> &str {
        &self.tenant_host
    }
}

/// The Ed25519 private key of a ConductorOne client secret. `Debug` shows nothing of the key.
pub(crate) struct ClientKey {
    signing: SigningKey,
    kid: Option<String>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey").field("kid", &self.kid).field("key", &"[redacted]").finish()
    }
}

/// The JWK fields baton-torq reads. No `Debug`: it holds the private key.
#[derive(serde::Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    d: Option<String>,
    x: Option<String>,
    kid: Option<String>,
}

impl Drop for Jwk {
    fn drop(&mut self) {
        if let Some(d) = self.d.as_mut() {
            d.zeroize();
        }
    }
}

impl ClientKey {
    /// Parses `secret-token:conductorone.com:v1:<unpadded base64url JWK JSON>`; the JWK must be an OKP Ed25519
    /// private key (`d` present; `x`, when present, must match it).
    pub(crate) fn parse(secret: &SecretString) -> Result<ClientKey, CredentialError> {
        const SHAPE: &str = "expected secret-token:conductorone.com:v1:<key> as shown when the credential was created";
        let bad = |why: &str| CredentialError(format!("{why}; {SHAPE}"));
        let raw = secret.expose_secret().trim();
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() != 4 {
            return Err(bad("it does not have 4 ':'-separated parts"));
        }
        if parts[0] != "secret-token" || parts[1] != "conductorone.com" {
            return Err(bad("it does not start with secret-token:conductorone.com:"));
        }
        if parts[2] != "v1" {
            return Err(bad("unsupported version (only v1 is known)"));
        }
        let encoded = parts[3].trim_end_matches('=');
        let json =
            Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded).map_err(|_| bad("the key part is not valid base64url"))?);
        let jwk: Jwk = serde_json::from_slice(&json).map_err(|_| bad("the key part is not a JSON Web Key"))?;
        let kty = jwk.kty.as_deref().unwrap_or("");
        let crv = jwk.crv.as_deref().unwrap_or("");
        if kty != "OKP" || crv != "Ed25519" {
            return Err(CredentialError(format!(
                "the key is not an Ed25519 key (kty {kty:?}, crv {crv:?}); ConductorOne client secrets hold Ed25519 \
                 keys: create a new credential in ConductorOne"
            )));
        }
        let d = jwk.d.as_deref().ok_or_else(|| bad("the key has no private part (d)"))?;
        let d = Zeroizing::new(
            URL_SAFE_NO_PAD.decode(d.trim_end_matches('=')).map_err(|_| bad("the key's d is not base64url"))?,
        );
        let bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(d.as_slice().try_into().map_err(|_| bad("the key's private part is not 32 bytes long"))?);
        let signing = SigningKey::from_bytes(&bytes);
        if let Some(x) = jwk.x.as_deref() {
            let public =
                URL_SAFE_NO_PAD.decode(x.trim_end_matches('=')).map_err(|_| bad("the key's x is not base64url"))?;
            if public.as_slice() != signing.verifying_key().as_bytes() {
                return Err(bad("the key's public part (x) does not match its private part (d)"));
            }
        }
        Ok(ClientKey { signing, kid: jwk.kid.clone().filter(|k| !k.is_empty()) })
    }

    /// A compact EdDSA JWS: header `{alg, nonce (16 random bytes, hex), kid?}`, claims `{iss = sub = client id,
    /// aud = tenant host, iat, nbf = iat - 2 min, exp = iat + 2 min}`.
    pub(crate) fn client_assertion(&self, client_id: &ClientId, now: SystemTime) -> SecretString {
        let nonce: [u8; 16] = rand::random();
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), "EdDSA".into());
        header.insert("nonce".into(), nonce.into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        let iat = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let skew = ASSERTION_SKEW.as_secs();
        let claims = serde_json::json!({
            "iss": client_id.as_str(),
            "sub": client_id.as_str(),
            "aud": client_id.tenant_host(),
            "iat": iat,
            "nbf": iat.saturating_sub(skew),
            "exp": iat + skew,
        });
        let header = serde_json::Value::Object(header).to_string();
        let mut jws = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.as_bytes()),
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        );
        let signature = self.signing.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        SecretString::from(jws)
    }
}

/// Builds a client secret string from raw Ed25519 private key bytes. Only tests use it (the integration tests
/// through `tests/common/c1_key.rs`): `pub` because integration tests link the library as compiled without
/// `cfg(test)`, hidden from the docs because it is no part of the connector's interface.
#[doc(hidden)]
pub fn encode_client_secret(private_key: &[u8; 32], kid: Option<&str>) -> SecretString {
    let signing = SigningKey::from_bytes(private_key);
    let mut jwk = serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "d": URL_SAFE_NO_PAD.encode(private_key),
        "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
    });
    if let (Some(kid), Some(obj)) = (kid, jwk.as_object_mut()) {
        obj.insert("kid".into(), kid.into());
    }
    let json = Zeroizing::new(jwk.to_string());
    SecretString::from(format!("secret-token:conductorone.com:v1:{}", URL_SAFE_NO_PAD.encode(json.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier as _};

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn client_id_shapes() {
        let id = ClientId::parse(" strange-hydra-68836@Acme.conductor.one/pcc ").unwrap();
        assert_eq!(
            (id.name(), id.tenant_host(), id.as_str()),
            ("strange-hydra-68836", "acme.conductor.one", "strange-hydra-68836@Acme.conductor.one/pcc")
        );
        for bad in ["", "nohost", "a@b", "@b/c", "a@/c", "a@b/", "a@https://x/c", "a b@c/d"] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn secret_round_trip_and_signature_verifies() {
        let secret = encode_client_secret(&KEY, Some("k1"));
        let key = ClientKey::parse(&secret).unwrap();
        assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(KEY)));
        let id = ClientId::parse("n@t.example/s").unwrap();
        let jws = key.client_assertion(&id, UNIX_EPOCH + Duration::from_secs(1_000_000));
        let parts: Vec<&str> = jws.expose_secret().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], "k1");
        assert_eq!(header["nonce"].as_str().unwrap().len(), 32);
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str(), claims["aud"].as_str()),
            (Some("n@t.example/s"), Some("n@t.example/s"), Some("t.example"))
        );
        assert_eq!((claims["nbf"].as_u64(), claims["exp"].as_u64()), (Some(1_000_000 - 120), Some(1_000_000 + 120)));
        let vk = key.signing.verifying_key();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();
    }

    #[test]
    fn bad_secrets_are_rejected_without_echo() {
        let jwk = |v: serde_json::Value| {
            format!("secret-token:conductorone.com:v1:{}", URL_SAFE_NO_PAD.encode(v.to_string()))
        };
        let cases = [
            "plain-text-secret".to_owned(),
            "secret-token:conductorone.com:v2:abc".to_owned(),
            "secret-token:conductorone.com:v1:!!!".to_owned(),
            jwk(serde_json::json!({"kty": "EC", "crv": "P-256", "d": "AAAA"})),
            jwk(serde_json::json!({"kty": "OKP", "crv": "Ed25519"})),
            jwk(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "d": URL_SAFE_NO_PAD.encode([1u8; 31])})),
        ];
        for case in cases {
            let err = ClientKey::parse(&SecretString::from(case.clone())).unwrap_err();
            let tail = case.rsplit(':').next().unwrap();
            assert!(!err.0.contains(tail), "{err} echoes the secret");
        }
    }
}
