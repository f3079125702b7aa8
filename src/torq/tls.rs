//! Certificate failures that no retry can fix: an issuer this machine does not trust, a certificate for another
//! name, an expired one, or no usable CA certificates at all (a bad `SSL_CERT_FILE`). Found in a transport error's
//! chain of sources, so both HTTP clients (Torq's here, ConductorOne's token requests in `crate::service`) stop at
//! once and name the fix instead of retrying a handshake that will fail the same way.
//!
//! Must not: decide the wording of the fix for a caller (the settings differ: `SSL_CERT_FILE` for Torq,
//! `BATON_C1_CA_CERT_FILE` for ConductorOne); it only says what is wrong.

/// What is wrong with the server's certificate (or with the trusted CA certificates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CertProblem {
    /// Signed by a CA this machine does not trust (a private CA, a TLS-inspecting proxy, a self-signed server).
    UnknownIssuer,
    /// Valid, but for another host name.
    WrongName,
    /// Expired, or not valid yet (a wrong clock, or a certificate nobody renewed).
    OutOfDate { expired: bool },
    /// No CA certificate could be loaded (e.g. `SSL_CERT_FILE` names a file without certificates).
    NoTrustedCas,
    /// Another certificate defect (revoked, bad signature, wrong purpose, ...), as rustls names it.
    Other(String),
}

impl CertProblem {
    /// The reason, as a person reads it.
    pub(crate) fn reason(&self) -> String {
        match self {
            CertProblem::UnknownIssuer => "its certificate is signed by an issuer this machine does not trust".into(),
            CertProblem::WrongName => "its certificate is for another host name".into(),
            CertProblem::OutOfDate { expired: true } => "its certificate has expired".into(),
            CertProblem::OutOfDate { expired: false } => "its certificate is not valid yet".into(),
            CertProblem::NoTrustedCas => {
                "no CA certificate could be loaded (the system store is empty, or SSL_CERT_FILE / SSL_CERT_DIR name \
                 no PEM certificates)"
                    .into()
            }
            CertProblem::Other(what) => format!("its certificate was refused ({what})"),
        }
    }
}

/// The one-line error for a Torq request whose handshake failed with `problem` (or a client that could not be set
/// up because of it, named by `fallback`, the API URL): the host, the reason and the fix.
pub(crate) fn torq_error(e: &reqwest::Error, problem: &CertProblem, fallback: &reqwest::Url) -> super::TorqError {
    let fix = match problem {
        CertProblem::WrongName => {
            "check that --torq-region (or --torq-api-url / --torq-auth-url) names Torq's host; a TLS-inspecting proxy \
             must issue certificates for that name"
        }
        CertProblem::OutOfDate { .. } => {
            "check this machine's clock (date -u); if it is right, the certificate of the server (or of a proxy in \
             between) must be renewed"
        }
        CertProblem::UnknownIssuer | CertProblem::NoTrustedCas | CertProblem::Other(_) => {
            "if a TLS-inspecting proxy or a private CA sits in between, add its CA certificate to the system trust \
             store, or point SSL_CERT_FILE at a PEM file that holds it"
        }
    };
    super::TorqError::Tls { host: host_of(e.url().unwrap_or(fallback)), reason: problem.reason(), fix }
}

/// `host` or `host:port` of `url`.
fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => url.as_str().to_string(),
    }
}

/// The certificate problem behind `e`, if a TLS handshake failed because of one; `None` for anything else
/// (refused connections, timeouts, resets: those may pass on the next attempt).
pub(crate) fn cert_problem(e: &(dyn std::error::Error + 'static)) -> Option<CertProblem> {
    use rustls::CertificateError as C;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(cert) => Some(match cert {
                    C::UnknownIssuer => CertProblem::UnknownIssuer,
                    C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::WrongName,
                    C::Expired | C::ExpiredContext { .. } => CertProblem::OutOfDate { expired: true },
                    C::NotValidYet | C::NotValidYetContext { .. } => CertProblem::OutOfDate { expired: false },
                    // Display of rustls' own variants; of Other, the verifier's error name (e.g. CaUsedAsEndEntity).
                    C::Other(inner) => CertProblem::Other(inner.to_string().chars().take(120).collect()),
                    other => CertProblem::Other(other.to_string().chars().take(120).collect()),
                }),
                // rustls-platform-verifier's answer when it found no CA certificate to trust.
                rustls::Error::General(text) if text.contains("CA certificates") => Some(CertProblem::NoTrustedCas),
                _ => None,
            };
        }
        // io::Error's `source` skips the error it wraps; look at that one first.
        current = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_found_inside_io_errors() {
        let wrapped = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let unknown = wrapped(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert_eq!(cert_problem(&unknown), Some(CertProblem::UnknownIssuer));
        let name = wrapped(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName));
        assert_eq!(cert_problem(&name), Some(CertProblem::WrongName));
        let none = wrapped(rustls::Error::General("No CA certificates were loaded from the system".into()));
        assert_eq!(cert_problem(&none), Some(CertProblem::NoTrustedCas));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(cert_problem(&reset), None);
        let alert = wrapped(rustls::Error::HandshakeNotComplete);
        assert_eq!(cert_problem(&alert), None);
    }
}
