-- Switchboard schema, version 1: the execution store, the inbox, the outbox and leases.
-- Record bodies are JSON text (TEXT, not JSONB: key order is part of what is stored). Times are
-- milliseconds since the Unix epoch.

CREATE TABLE switchboard_conversations (
    id      TEXT   NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    body    TEXT   NOT NULL
);

CREATE TABLE switchboard_executions (
    seq             BIGSERIAL NOT NULL UNIQUE,
    id              TEXT      NOT NULL PRIMARY KEY,
    version         BIGINT    NOT NULL,
    flow_id         TEXT      NOT NULL,
    conversation_id TEXT      NOT NULL,
    status          TEXT      NOT NULL,
    waiting_reason  TEXT,
    started_at      BIGINT    NOT NULL,
    ended_at        BIGINT,
    timer_due_at    BIGINT,
    effect_due_at   BIGINT,
    body            TEXT      NOT NULL
);
CREATE INDEX switchboard_executions_by_start ON switchboard_executions (started_at, seq);
CREATE INDEX switchboard_executions_by_flow ON switchboard_executions (flow_id, started_at, seq);
CREATE INDEX switchboard_executions_by_conversation
    ON switchboard_executions (conversation_id, started_at, seq);
CREATE INDEX switchboard_executions_by_status
    ON switchboard_executions (status, waiting_reason, started_at, seq);
CREATE INDEX switchboard_executions_due_timers ON switchboard_executions (timer_due_at, id)
    WHERE timer_due_at IS NOT NULL;
CREATE INDEX switchboard_executions_due_effects ON switchboard_executions (effect_due_at, id)
    WHERE effect_due_at IS NOT NULL;
CREATE INDEX switchboard_executions_ended ON switchboard_executions (ended_at)
    WHERE ended_at IS NOT NULL;

CREATE TABLE switchboard_events (
    execution_id TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    event_type   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    body         TEXT   NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE switchboard_message_ids (
    conversation_id TEXT   NOT NULL,
    message_id      TEXT   NOT NULL,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX switchboard_message_ids_by_time ON switchboard_message_ids (received_at);

CREATE TABLE switchboard_idempotency (
    key         TEXT   NOT NULL PRIMARY KEY,
    result      TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX switchboard_idempotency_by_time ON switchboard_idempotency (recorded_at);

CREATE TABLE switchboard_inbox (
    seq             BIGSERIAL NOT NULL PRIMARY KEY,
    conversation_id TEXT      NOT NULL,
    key             TEXT      NOT NULL,
    kind            TEXT      NOT NULL,
    received_at     BIGINT    NOT NULL,
    due_at          BIGINT    NOT NULL,
    body            TEXT      NOT NULL,
    UNIQUE (conversation_id, key)
);

CREATE TABLE switchboard_outbox (
    seq             BIGSERIAL NOT NULL UNIQUE,
    id              TEXT      NOT NULL PRIMARY KEY,
    conversation_id TEXT      NOT NULL,
    execution_id    TEXT      NOT NULL,
    whatsapp_id     TEXT,
    state           TEXT      NOT NULL,
    body            TEXT      NOT NULL
);
CREATE INDEX switchboard_outbox_by_execution ON switchboard_outbox (execution_id, seq);
CREATE INDEX switchboard_outbox_by_whatsapp_id ON switchboard_outbox (whatsapp_id)
    WHERE whatsapp_id IS NOT NULL;

CREATE TABLE switchboard_leases (
    conversation_id TEXT   NOT NULL PRIMARY KEY,
    owner           TEXT   NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- A turn's commit, atomically, in one round trip: `c` is a JSON document of the rows to write
-- (record bodies as JSON strings, so their text is kept as is). A version that does not match,
-- an event or a message id already recorded raises SQLSTATE SB409 and changes nothing.
CREATE FUNCTION switchboard_commit(c JSON) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    r JSON;
    n BIGINT;
BEGIN
    FOR r IN SELECT * FROM json_array_elements(c -> 'conversations') LOOP
        IF (r ->> 'expected')::BIGINT = 0 THEN
            INSERT INTO switchboard_conversations (id, version, body)
            VALUES (r ->> 'id', 1, r ->> 'body')
            ON CONFLICT (id) DO NOTHING;
        ELSE
            UPDATE switchboard_conversations SET version = version + 1, body = r ->> 'body'
            WHERE id = r ->> 'id' AND version = (r ->> 'expected')::BIGINT;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RAISE EXCEPTION 'conversation % is not at version %', r ->> 'id', r ->> 'expected'
                USING ERRCODE = 'SB409';
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM json_array_elements(c -> 'executions') LOOP
        IF (r ->> 'expected')::BIGINT = 0 THEN
            INSERT INTO switchboard_executions (id, version, flow_id, conversation_id, status,
                waiting_reason, started_at, ended_at, timer_due_at, effect_due_at, body)
            VALUES (r ->> 'id', 1, r ->> 'flow_id', r ->> 'conversation_id', r ->> 'status',
                r ->> 'waiting_reason', (r ->> 'started_at')::BIGINT, (r ->> 'ended_at')::BIGINT,
                (r ->> 'timer_due_at')::BIGINT, (r ->> 'effect_due_at')::BIGINT, r ->> 'body')
            ON CONFLICT (id) DO NOTHING;
        ELSE
            UPDATE switchboard_executions SET version = version + 1, flow_id = r ->> 'flow_id',
                conversation_id = r ->> 'conversation_id', status = r ->> 'status',
                waiting_reason = r ->> 'waiting_reason',
                started_at = (r ->> 'started_at')::BIGINT, ended_at = (r ->> 'ended_at')::BIGINT,
                timer_due_at = (r ->> 'timer_due_at')::BIGINT,
                effect_due_at = (r ->> 'effect_due_at')::BIGINT, body = r ->> 'body'
            WHERE id = r ->> 'id' AND version = (r ->> 'expected')::BIGINT;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RAISE EXCEPTION 'execution % is not at version %', r ->> 'id', r ->> 'expected'
                USING ERRCODE = 'SB409';
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM json_array_elements(c -> 'events') LOOP
        INSERT INTO switchboard_events (execution_id, seq, event_type, created_at, body)
        VALUES (r ->> 'execution_id', (r ->> 'seq')::BIGINT, r ->> 'event_type',
            (r ->> 'created_at')::BIGINT, r ->> 'body')
        ON CONFLICT (execution_id, seq) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RAISE EXCEPTION 'event % of execution % is already recorded', r ->> 'seq',
                r ->> 'execution_id' USING ERRCODE = 'SB409';
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM json_array_elements(c -> 'message_ids') LOOP
        INSERT INTO switchboard_message_ids (conversation_id, message_id, received_at)
        VALUES (r ->> 'conversation_id', r ->> 'message_id', (r ->> 'received_at')::BIGINT)
        ON CONFLICT (conversation_id, message_id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            RAISE EXCEPTION 'message % was already processed in conversation %',
                r ->> 'message_id', r ->> 'conversation_id' USING ERRCODE = 'SB409';
        END IF;
    END LOOP;
    IF json_typeof(c -> 'idempotency') = 'object' THEN
        INSERT INTO switchboard_idempotency (key, result, recorded_at)
        VALUES (c -> 'idempotency' ->> 'key', c -> 'idempotency' ->> 'result',
            (c -> 'idempotency' ->> 'recorded_at')::BIGINT)
        ON CONFLICT (key) DO UPDATE SET result = excluded.result,
            recorded_at = excluded.recorded_at;
    END IF;
    FOR r IN SELECT * FROM json_array_elements(c -> 'outbox') LOOP
        INSERT INTO switchboard_outbox (id, conversation_id, execution_id, whatsapp_id, state,
            body)
        VALUES (r ->> 'id', r ->> 'conversation_id', r ->> 'execution_id', r ->> 'whatsapp_id',
            r ->> 'state', r ->> 'body')
        ON CONFLICT (id) DO UPDATE SET whatsapp_id = excluded.whatsapp_id,
            state = excluded.state, body = excluded.body;
    END LOOP;
    DELETE FROM switchboard_inbox
    WHERE seq IN (SELECT value::BIGINT FROM json_array_elements_text(c -> 'consumed'));
END
$$;
