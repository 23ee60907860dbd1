//! Authentication (API key → [`Principal`]) and authorisation (role × [`Access`] ×
//! collection scope). Both transports call [`Authenticator::authenticate`] with the
//! presented key and [`Principal::authorize`] before touching the service, so the rules
//! live here once.
//!
//! | role         | read (info, get, scroll, count, search) | write points | admin (collections, snapshots) |
//! |--------------|-----------------------------------------|--------------|--------------------------------|
//! | `read-only`  | yes                                     | no           | no                             |
//! | `read-write` | yes                                     | yes          | no                             |
//! | `admin`      | yes                                     | yes          | yes                            |
//!
//! A key scoped to collections may touch only those (for collection-less calls such as
//! "list collections", the answer is filtered to its scope; creating a collection is an
//! admin call on the new name, so a scoped admin may create only names in its scope).

use crate::config::AuthConfig;
use crate::error::ApiError;
use serde::Deserialize;
use std::collections::HashMap;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read and write points; no collection or snapshot management.
    ReadWrite,
    /// Read and search only.
    ReadOnly,
}

impl Role {
    /// The role's name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReadWrite => "read-write",
            Role::ReadOnly => "read-only",
        }
    }

    fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => true,
            Access::Write => matches!(self, Role::Admin | Role::ReadWrite),
            Access::Admin => self == Role::Admin,
        }
    }
}

/// The kind of access an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads and searches.
    Read,
    /// Point writes (upsert, delete).
    Write,
    /// Collection and snapshot management.
    Admin,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name (`anonymous` when auth is off).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Collections it may touch; `None` = all.
    pub collections: Option<Vec<String>>,
}

impl Principal {
    /// The caller when authentication is off: allowed everything.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            role: Role::Admin,
            collections: None,
        }
    }

    /// Whether this principal may see or touch `collection` at all.
    pub fn may_touch(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|scope| scope.iter().any(|c| c == collection))
    }

    /// Allows the call or says precisely why not.
    pub fn authorize(&self, access: Access, collection: Option<&str>) -> Result<(), ApiError> {
        if !self.role.allows(access) {
            let needed = match access {
                Access::Read => "read",
                Access::Write => "read-write or admin",
                Access::Admin => "admin",
            };
            return Err(ApiError::PermissionDenied(format!(
                "key `{}` has role {}; this operation needs {needed}",
                self.name,
                self.role.as_str()
            )));
        }
        if let Some(name) = collection {
            if !self.may_touch(name) {
                return Err(ApiError::PermissionDenied(format!(
                    "key `{}` is not allowed to access collection `{name}`",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// Maps presented keys to principals.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    keys: HashMap<String, Principal>,
}

impl Authenticator {
    /// From the configured keys.
    pub fn new(config: &AuthConfig) -> Authenticator {
        let keys = config
            .keys
            .iter()
            .map(|k| {
                (
                    k.key.clone(),
                    Principal {
                        name: k.name.clone(),
                        role: k.role,
                        collections: k.collections.clone(),
                    },
                )
            })
            .collect();
        Authenticator { keys }
    }

    /// Whether any key is configured (otherwise every call is anonymous).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The principal for a presented key. `presented` is the raw header value: either
    /// `Bearer <key>` (from `authorization`) or the key itself (from `api-key`).
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Principal, ApiError> {
        if !self.enabled() {
            return Ok(Principal::anonymous());
        }
        let Some(raw) = presented else {
            return Err(ApiError::Unauthenticated(
                "missing API key: send `authorization: Bearer <key>` or `api-key: <key>`".into(),
            ));
        };
        let key = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
        // A map lookup is not constant-time, but the keys are the map's keys: an attacker
        // learns nothing from timing that a hash collision search would give cheaper.
        self.keys
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("invalid API key".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn auth() -> Authenticator {
        Authenticator::new(&AuthConfig {
            keys: vec![ApiKeyConfig {
                name: "reader".into(),
                key: "read-key-123".into(),
                role: Role::ReadOnly,
                collections: Some(vec!["docs".into()]),
            }],
        })
    }

    #[test]
    fn keys_resolve_with_or_without_bearer() {
        let a = auth();
        assert_eq!(
            a.authenticate(Some("Bearer read-key-123")).unwrap().name,
            "reader"
        );
        assert_eq!(a.authenticate(Some("read-key-123")).unwrap().name, "reader");
        assert!(matches!(
            a.authenticate(None),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            a.authenticate(Some("nope")),
            Err(ApiError::Unauthenticated(_))
        ));
    }

    #[test]
    fn role_and_scope_are_enforced() {
        let p = auth().authenticate(Some("read-key-123")).unwrap();
        assert!(p.authorize(Access::Read, Some("docs")).is_ok());
        assert!(p.authorize(Access::Read, Some("other")).is_err());
        assert!(p.authorize(Access::Write, Some("docs")).is_err());
        let open = Authenticator::default().authenticate(None).unwrap();
        assert!(open.authorize(Access::Admin, Some("x")).is_ok());
    }
}
