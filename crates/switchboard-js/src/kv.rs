//! `env.KV`: the in-memory key/value namespace shared by all calls of one invoker.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// The most keys a namespace holds.
pub const MAX_KV_KEYS: usize = 10_000;

/// The largest value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

/// The longest key, in bytes (as Cloudflare KV).
pub const MAX_KV_KEY_BYTES: usize = 512;

/// The namespace: strings to strings, bounded.
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
