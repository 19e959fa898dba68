//! `env.KV`: a function's key/value namespace — in memory for the invoker's life, or in the
//! execution store's key-value namespaces (surviving restarts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchboard_runtime::StoreError;
use switchboard_runtime::store::ExecutionStore;

/// The most keys a namespace holds.
pub const MAX_KV_KEYS: usize = switchboard_runtime::store::KV_MAX_KEYS;

/// The largest value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = switchboard_runtime::store::KV_MAX_VALUE_BYTES;

/// The longest key, in bytes (as Cloudflare KV).
pub const MAX_KV_KEY_BYTES: usize = switchboard_runtime::store::KV_MAX_KEY_BYTES;

/// Where one call's `env.KV` lives.
pub(super) enum KvHandle {
    /// The function's in-memory namespace.
    Memory(Arc<Kv>),
    /// The function's namespace in a store, reached from the call's thread through the
    /// caller's tokio runtime.
    Store {
        store: Arc<dyn ExecutionStore>,
        namespace: String,
        handle: tokio::runtime::Handle,
    },
}

/// A store failure as the function sees it (`KV.put: …`); limits keep their message, other
/// failures say the store failed (no key or value in either).
fn store_error(op: &str, e: StoreError) -> String {
    match e {
        StoreError::Limit(m) => format!("KV.{op}: {m}"),
        other => format!("KV.{op}: the store failed ({other})"),
    }
}

impl KvHandle {
    pub(super) fn get(&self, key: &str) -> Result<Option<String>, String> {
        match self {
            KvHandle::Memory(kv) => Ok(kv.get(key)),
            KvHandle::Store {
                store,
                namespace,
                handle,
            } => handle
                .block_on(store.kv_get(namespace, key))
                .map_err(|e| store_error("get", e)),
        }
    }

    pub(super) fn put(&self, key: String, value: String) -> Result<(), String> {
        match self {
            KvHandle::Memory(kv) => kv.put(key, value),
            KvHandle::Store {
                store,
                namespace,
                handle,
            } => handle
                .block_on(store.kv_put(namespace, &key, &value))
                .map_err(|e| store_error("put", e)),
        }
    }

    pub(super) fn delete(&self, key: &str) -> Result<(), String> {
        match self {
            KvHandle::Memory(kv) => {
                kv.delete(key);
                Ok(())
            }
            KvHandle::Store {
                store,
                namespace,
                handle,
            } => handle
                .block_on(store.kv_delete(namespace, key))
                .map_err(|e| store_error("delete", e)),
        }
    }

    pub(super) fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        match self {
            KvHandle::Memory(kv) => Ok(kv.list(prefix)),
            KvHandle::Store {
                store,
                namespace,
                handle,
            } => handle
                .block_on(store.kv_list(namespace, prefix, MAX_KV_KEYS))
                .map_err(|e| store_error("list", e)),
        }
    }
}

/// An in-memory namespace: strings to strings, bounded.
#[derive(Debug, Default)]
pub(super) struct Kv {
    map: Mutex<HashMap<String, String>>,
}

impl Kv {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    /// Stores `value`; `Err` says why not (no key or value in the message).
    pub(super) fn put(&self, key: String, value: String) -> Result<(), String> {
        if key.is_empty() {
            return Err("KV.put: the key must not be empty".to_owned());
        }
        if key.len() > MAX_KV_KEY_BYTES {
            return Err(format!(
                "KV.put: the key is {} bytes, over the {MAX_KV_KEY_BYTES}-byte limit",
                key.len()
            ));
        }
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(format!(
                "KV.put: the value is {} bytes, over the {MAX_KV_VALUE_BYTES}-byte limit",
                value.len()
            ));
        }
        let mut map = self.lock();
        if map.len() >= MAX_KV_KEYS && !map.contains_key(&key) {
            return Err(format!(
                "KV.put: the namespace is full ({MAX_KV_KEYS} keys)"
            ));
        }
        map.insert(key, value);
        Ok(())
    }

    pub(super) fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The keys starting with `prefix`, sorted.
    pub(super) fn list(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let kv = Kv::default();
        assert!(kv.put(String::new(), "v".into()).is_err());
        assert!(
            kv.put("k".repeat(MAX_KV_KEY_BYTES + 1), "v".into())
                .is_err()
        );
        assert!(
            kv.put("k".into(), "v".repeat(MAX_KV_VALUE_BYTES + 1))
                .is_err()
        );
        for i in 0..MAX_KV_KEYS {
            kv.put(format!("k{i}"), String::new()).unwrap();
        }
        let full = kv.put("another".into(), "v".into()).unwrap_err();
        assert!(full.contains("full"), "{full}");
        kv.put("k0".into(), "replaced".into()).unwrap();
        assert_eq!(kv.get("k0").as_deref(), Some("replaced"));
        kv.delete("k0");
        assert_eq!(kv.get("k0"), None);
        assert_eq!(kv.list("k1").len(), 1111);
    }
}
