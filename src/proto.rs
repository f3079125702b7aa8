//! Protobuf message types generated at build time from the project's own `.proto` files in `src/proto/`
//! (see `build.rs`). The module tree mirrors the protobuf packages so cross-package references resolve.
//! Owns no logic: builders live in `connector`, storage in `c1z`.

#[allow(clippy::all, missing_docs)]
pub mod c1 {
    pub mod connector {
        pub mod v2 {
            include!(concat!(env!("OUT_DIR"), "/c1.connector.v2.rs"));
        }
    }
    // service mode: ConductorOne's task API (BatonService client and, for the tests' fake, server)
    pub mod connectorapi {
        pub mod baton {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/c1.connectorapi.baton.v1.rs"));
            }
        }
    }
}

/// The gRPC error model (`google.rpc.Status`), sent in service mode's FinishTask.
#[allow(clippy::all, missing_docs)]
pub mod google {
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

pub use c1::connector::v2 as connector_v2;
pub use c1::connectorapi::baton::v1 as baton_v1;
