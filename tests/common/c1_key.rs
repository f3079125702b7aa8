//! ConductorOne client credentials for service-mode tests: a fresh Ed25519 key and the client secret that holds
//! it, encoded by the connector's own `encode_client_secret` so the tests and the parser cannot drift apart.

use baton_torq::service::credentials::encode_client_secret;
use secrecy::ExposeSecret as _;

/// A fresh key: (private bytes, client secret text, the secret's base64url JWK part).
pub fn test_key() -> ([u8; 32], String, String) {
    let private: [u8; 32] = rand::random();
    let secret = encode_client_secret(&private, Some("test-kid")).expose_secret().to_owned();
    let jwk_part = secret.rsplit(':').next().expect("the secret has a key part").to_owned();
    (private, secret, jwk_part)
}

/// The public half of `private`, as the fake ConductorOne verifies client assertions with it.
pub fn public_of(private: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(private).verifying_key().to_bytes()
}
