-- Switchboard schema, version 3: key-value namespaces (`env.KV` of local functions, one
-- namespace per function).
-- Keys and values are BYTEA holding UTF-8 text: PostgreSQL text cannot hold a NUL character
-- (a function may store one), and BYTEA compares byte by byte, the order the store's contract
-- gives keys whatever the database's collation.

CREATE TABLE switchboard_kv (
    namespace TEXT  NOT NULL,
    key       BYTEA NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- How many keys each namespace holds, so a put of a new key checks the namespace's limit
-- without counting its rows; its row is also the lock that orders new keys of one namespace.
CREATE TABLE switchboard_kv_namespaces (
    namespace TEXT    NOT NULL PRIMARY KEY,
    keys      INTEGER NOT NULL
);

-- Stores `v` under `k` in namespace `ns`, replacing any value. A new key is added only while
-- the namespace holds fewer than `max_keys` keys: returns false (changing nothing) when it is
-- full. Replacing a value takes no namespace lock; adding a key locks the namespace's row, so
-- concurrent puts of new keys never overfill it.
CREATE FUNCTION switchboard_kv_put(ns TEXT, k BYTEA, v BYTEA, max_keys INTEGER)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER;
BEGIN
    UPDATE switchboard_kv SET value = v WHERE namespace = ns AND key = k;
    IF FOUND THEN
        RETURN TRUE;
    END IF;
    INSERT INTO switchboard_kv_namespaces (namespace, keys) VALUES (ns, 0)
    ON CONFLICT (namespace) DO NOTHING;
    SELECT keys INTO n FROM switchboard_kv_namespaces WHERE namespace = ns FOR UPDATE;
    -- Under the lock: a concurrent put may have added this key meanwhile.
    UPDATE switchboard_kv SET value = v WHERE namespace = ns AND key = k;
    IF FOUND THEN
        RETURN TRUE;
    END IF;
    IF n >= max_keys THEN
        RETURN FALSE;
    END IF;
    INSERT INTO switchboard_kv (namespace, key, value) VALUES (ns, k, v);
    UPDATE switchboard_kv_namespaces SET keys = keys + 1 WHERE namespace = ns;
    RETURN TRUE;
END
$$;

-- Removes `k` from namespace `ns` (nothing when it is absent). The namespace's row is locked
-- first, in the same order as a put adding a key, so the two never deadlock.
CREATE FUNCTION switchboard_kv_delete(ns TEXT, k BYTEA) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM switchboard_kv_namespaces WHERE namespace = ns FOR UPDATE;
    DELETE FROM switchboard_kv WHERE namespace = ns AND key = k;
    IF FOUND THEN
        UPDATE switchboard_kv_namespaces SET keys = keys - 1 WHERE namespace = ns;
    END IF;
END
$$;
