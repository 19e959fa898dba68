//! Offline adapters: the defaults everywhere, so every flow runs with no network.
//!
//! * [`OfflineModel`] decides by word overlap, prefixes AI-field prompts with `[ai] `, and
//!   answers as an agent `[<node id>] <user text>` (calling `complete_task` on `done`);
//!   [`ScriptedModel`] plays queued answers first.
//! * [`RecordingMessenger`] keeps what was sent; [`ScriptedFunctions`] answers from closures or
//!   JSON values (e.g. loaded from a directory); [`ScriptedHttp`] answers from a list of canned
//!   responses; [`ManualClock`] only moves when told to; [`RecordingEventSink`] keeps project
//!   events; [`MapSecrets`] and [`EnvSecrets`] provide secrets.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::adapters::{
    AdapterError, AdapterResult, ChatRequest, ChatResponse, Clock, FunctionCall, FunctionInvoker,
    HttpClient, HttpRequest, HttpResponse, LanguageModel, McpClient, McpServer, Messenger,
    OutboundMessage, ProjectEvent, ProjectEventSink, Purpose, Secrets, SendReceipt, ToolSpec,
};
use crate::adapters::{Adapters, EnvSecrets, SequentialIds};
use crate::failure::FailureKind;
use crate::state::ToolCall;
use crate::time::Timestamp;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lowercase words of at least 3 letters.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

/// The offline model (runtime-semantics: offline adapters).
#[derive(Debug, Default)]
pub struct OfflineModel;

impl OfflineModel {
    /// The offline answer to a request.
    pub fn answer(request: &ChatRequest) -> ChatResponse {
        match &request.purpose {
            Purpose::Decide {
                labels,
                conditions,
                last_user_input,
                last_reply_id,
                ..
            } => {
                let text = last_user_input.trim();
                // A reply (button/row id or title) equal to a label picks it.
                if let Some(l) = labels
                    .iter()
                    .find(|l| l.as_str() == text || last_reply_id.as_deref() == Some(l.as_str()))
                {
                    return ChatResponse {
                        text: Some(l.clone()),
                        tool_calls: Vec::new(),
                    };
                }
                let input: Vec<String> = words(text);
                let mut best: Option<(usize, &str)> = None;
                for (label, description) in conditions {
                    let cond = words(&format!("{label} {description}"));
                    let shared = input.iter().filter(|w| cond.contains(w)).count();
                    if shared > 0 && best.is_none_or(|(b, _)| shared > b) {
                        best = Some((shared, label));
                    }
                }
                let pick = best
                    .map(|(_, l)| l.to_owned())
                    .or_else(|| labels.first().cloned())
                    .unwrap_or_default();
                ChatResponse {
                    text: Some(pick),
                    tool_calls: Vec::new(),
                }
            }
            // A whole-object template `parameters` field must be JSON: answer an array.
            Purpose::AiField { prompt, path, .. } if path == "parameters" => ChatResponse {
                text: Some(serde_json::to_string(&[format!("[ai] {prompt}")]).unwrap_or_default()),
                tool_calls: Vec::new(),
            },
            Purpose::AiField { prompt, .. } => ChatResponse {
                text: Some(format!("[ai] {prompt}")),
                tool_calls: Vec::new(),
            },
            Purpose::Agent { node_id } => {
                let user = request
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.role == "user")
                    .map(|m| m.content.clone())
                    .unwrap_or_default();
                // After a tool result, end the turn quietly.
                if request.messages.last().is_some_and(|m| m.role == "tool") {
                    return ChatResponse::default();
                }
                if user.trim().eq_ignore_ascii_case("done")
                    && request.tools.iter().any(|t| t.name == "complete_task")
                {
                    return ChatResponse {
                        text: None,
                        tool_calls: vec![ToolCall {
                            id: "call_done".into(),
                            name: "complete_task".into(),
                            arguments: json!({}),
                        }],
                    };
                }
                ChatResponse {
                    text: Some(format!("[{node_id}] {user}")),
                    tool_calls: Vec::new(),
                }
            }
            Purpose::AskAboutFile { .. } => ChatResponse {
                text: Some("[ai] offline answer".into()),
                tool_calls: Vec::new(),
            },
        }
    }
}

#[async_trait]
impl LanguageModel for OfflineModel {
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse> {
        Ok(OfflineModel::answer(&request))
    }
}

/// Plays queued answers (or errors) first, then answers like [`OfflineModel`]. Records requests.
#[derive(Debug, Default)]
pub struct ScriptedModel {
    queue: Mutex<VecDeque<AdapterResult<ChatResponse>>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    /// Queues an answer.
    pub fn push(&self, answer: AdapterResult<ChatResponse>) {
        lock(&self.queue).push_back(answer);
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// Answers still queued.
    pub fn pending(&self) -> usize {
        lock(&self.queue).len()
    }
}

#[async_trait]
impl LanguageModel for ScriptedModel {
    async fn complete(&self, request: ChatRequest) -> AdapterResult<ChatResponse> {
        lock(&self.requests).push(request.clone());
        match lock(&self.queue).pop_front() {
            Some(a) => a,
            None => Ok(OfflineModel::answer(&request)),
        }
    }
}

/// Records every message and answers with ids `wamid.out.<n>`.
#[derive(Debug, Default)]
pub struct RecordingMessenger {
    sent: Mutex<Vec<OutboundMessage>>,
    counter: AtomicU64,
    failures: Mutex<VecDeque<AdapterError>>,
}

impl RecordingMessenger {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<OutboundMessage> {
        lock(&self.sent).clone()
    }

    /// Takes the messages sent so far.
    pub fn take(&self) -> Vec<OutboundMessage> {
        std::mem::take(&mut *lock(&self.sent))
    }

    /// The next send fails with this error.
    pub fn fail_next(&self, e: AdapterError) {
        lock(&self.failures).push_back(e);
    }
}

#[async_trait]
impl Messenger for RecordingMessenger {
    async fn send(&self, message: OutboundMessage) -> AdapterResult<SendReceipt> {
        if let Some(e) = lock(&self.failures).pop_front() {
            return Err(e);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.sent).push(message);
        Ok(SendReceipt {
            message_id: format!("wamid.out.{n}"),
        })
    }
}

/// A function implemented in Rust.
pub type FunctionFn = Arc<dyn Fn(&FunctionCall<'_>) -> AdapterResult<Value> + Send + Sync>;

/// What [`ScriptedFunctions`] remembers of a call.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionCallRecord {
    /// `function_id`, else `function_slug`.
    pub function: Option<String>,
    /// The node.
    pub node_id: String,
    /// `available_edges`, for function decides.
    pub available_edges: Option<Vec<String>>,
    /// `input`, for agent function tools.
    pub input: Option<Value>,
}

/// Functions from closures and canned answers; queued answers per function go first. It
/// remembers the last [`ScriptedFunctions::CALL_LOG_CAPACITY`] calls (a long-running offline
/// server does not grow with them).
#[derive(Default)]
pub struct ScriptedFunctions {
    functions: Mutex<HashMap<String, FunctionFn>>,
    queued: Mutex<HashMap<String, VecDeque<AdapterResult<Value>>>>,
    calls: Mutex<VecDeque<FunctionCallRecord>>,
}

impl std::fmt::Debug for ScriptedFunctions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedFunctions").finish_non_exhaustive()
    }
}

impl ScriptedFunctions {
    /// Registers a closure under an id or slug.
    pub fn register(
        &self,
        name: &str,
        f: impl Fn(&FunctionCall<'_>) -> AdapterResult<Value> + Send + Sync + 'static,
    ) {
        lock(&self.functions).insert(name.to_owned(), Arc::new(f));
    }

    /// Registers a fixed answer.
    pub fn answer(&self, name: &str, value: Value) {
        self.register(name, move |_| Ok(value.clone()));
    }

    /// Queues one answer (or error) for the next call of `name`.
    pub fn push(&self, name: &str, answer: AdapterResult<Value>) {
        lock(&self.queued)
            .entry(name.to_owned())
            .or_default()
            .push_back(answer);
    }

    /// Calls remembered: the last ones, oldest dropped first.
    pub const CALL_LOG_CAPACITY: usize = 10_000;

    /// The calls received so far (the last [`ScriptedFunctions::CALL_LOG_CAPACITY`]), oldest
    /// first.
    pub fn calls(&self) -> Vec<FunctionCallRecord> {
        lock(&self.calls).iter().cloned().collect()
    }
}

#[async_trait]
impl FunctionInvoker for ScriptedFunctions {
    async fn invoke(&self, call: &FunctionCall<'_>) -> AdapterResult<Value> {
        let name = call.function_id.or(call.function_slug).map(str::to_owned);
        {
            let mut calls = lock(&self.calls);
            if calls.len() >= Self::CALL_LOG_CAPACITY {
                calls.pop_front();
            }
            calls.push_back(FunctionCallRecord {
                function: name.clone(),
                node_id: call.node_id.to_owned(),
                available_edges: call.available_edges.map(<[String]>::to_vec),
                input: call.input.cloned(),
            });
        }
        for name in call.function_id.iter().chain(&call.function_slug) {
            if let Some(a) = lock(&self.queued)
                .get_mut(*name)
                .and_then(VecDeque::pop_front)
            {
                return a;
            }
            let f = lock(&self.functions).get(*name).cloned();
            if let Some(f) = f {
                return f(call);
            }
        }
        Err(AdapterError::new(
            FailureKind::NotFound,
            format!("function `{}` is not registered", name.unwrap_or_default()),
        ))
    }
}

/// A canned HTTP response for requests whose URL starts with a prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct CannedResponse {
    /// Method to match (`None`: any).
    pub method: Option<String>,
    /// URL prefix to match.
    pub url_prefix: String,
    /// The response, or a transport error.
    pub response: Result<HttpResponse, AdapterError>,
    /// Used once, or for every match.
    pub once: bool,
}

/// An HTTP client answering from canned responses (first match wins); unmatched → 404.
#[derive(Debug, Default)]
pub struct ScriptedHttp {
    canned: Mutex<Vec<CannedResponse>>,
    requests: Mutex<Vec<HttpRequest>>,
}

impl ScriptedHttp {
    /// Adds a canned response.
    pub fn push(&self, c: CannedResponse) {
        lock(&self.canned).push(c);
    }

    /// A JSON response for every request to URLs starting with `prefix`.
    pub fn json(&self, prefix: &str, status: u16, body: Value) {
        self.push(CannedResponse {
            method: None,
            url_prefix: prefix.to_owned(),
            response: Ok(HttpResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
            }),
            once: false,
        });
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl HttpClient for ScriptedHttp {
    async fn send(&self, request: HttpRequest) -> AdapterResult<HttpResponse> {
        lock(&self.requests).push(request.clone());
        let mut canned = lock(&self.canned);
        let found = canned.iter().position(|c| {
            request.url.starts_with(&c.url_prefix)
                && c.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&request.method))
        });
        match found {
            Some(i) => {
                let c = if canned[i].once {
                    canned.remove(i)
                } else {
                    canned[i].clone()
                };
                c.response
            }
            None => Ok(HttpResponse {
                status: 404,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"no canned response (offline)".to_vec(),
            }),
        }
    }
}

/// An MCP client with scripted servers: tools and fixed results per `<server>/<tool>`.
#[derive(Debug, Default)]
pub struct ScriptedMcp {
    tools: Mutex<HashMap<String, Vec<ToolSpec>>>,
    results: Mutex<HashMap<String, Value>>,
}

impl ScriptedMcp {
    /// Declares a server's tool and its fixed result.
    pub fn tool(&self, server: &str, spec: ToolSpec, result: Value) {
        lock(&self.results).insert(format!("{server}/{}", spec.name), result);
        lock(&self.tools)
            .entry(server.to_owned())
            .or_default()
            .push(spec);
    }
}

#[async_trait]
impl McpClient for ScriptedMcp {
    async fn list_tools(&self, server: &McpServer) -> AdapterResult<Vec<ToolSpec>> {
        Ok(lock(&self.tools)
            .get(&server.name)
            .cloned()
            .unwrap_or_default())
    }

    async fn call_tool(
        &self,
        server: &McpServer,
        tool: &str,
        _arguments: Value,
    ) -> AdapterResult<Value> {
        lock(&self.results)
            .get(&format!("{}/{tool}", server.name))
            .cloned()
            .ok_or_else(|| {
                AdapterError::new(
                    FailureKind::NotFound,
                    format!("MCP tool `{tool}` is not scripted"),
                )
            })
    }
}

/// Keeps project events.
#[derive(Debug, Default)]
pub struct RecordingEventSink {
    events: Mutex<Vec<ProjectEvent>>,
}

impl RecordingEventSink {
    /// Events received so far.
    pub fn events(&self) -> Vec<ProjectEvent> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl ProjectEventSink for RecordingEventSink {
    async fn emit(&self, event: ProjectEvent) -> AdapterResult<()> {
        lock(&self.events).push(event);
        Ok(())
    }
}

/// Secrets from a map.
#[derive(Debug, Default)]
pub struct MapSecrets(Mutex<HashMap<String, String>>);

impl MapSecrets {
    /// Sets a secret.
    pub fn set(&self, name: &str, value: &str) {
        lock(&self.0).insert(name.to_owned(), value.to_owned());
    }
}

impl Secrets for MapSecrets {
    fn get(&self, name: &str) -> Option<String> {
        lock(&self.0).get(name).cloned()
    }
}

/// A clock that moves only when told to; `sleep` advances it.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Sets the time.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// 2026-01-05T10:00:00Z.
    fn default() -> Self {
        ManualClock::new(Timestamp(1_767_607_200_000))
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

impl Adapters {
    /// The offline adapters ([`OfflineAdapters::default`]): nothing leaves the process. Only
    /// for tests, local runs and tools.
    pub fn offline() -> Adapters {
        OfflineAdapters::default().adapters()
    }
}

/// The offline adapters, kept typed so tests and tools can inspect them.
#[derive(Clone)]
pub struct OfflineAdapters {
    /// Messenger.
    pub messenger: Arc<RecordingMessenger>,
    /// Model.
    pub model: Arc<ScriptedModel>,
    /// Functions.
    pub functions: Arc<ScriptedFunctions>,
    /// HTTP.
    pub http: Arc<ScriptedHttp>,
    /// MCP.
    pub mcp: Arc<ScriptedMcp>,
    /// Project events.
    pub project_events: Arc<RecordingEventSink>,
    /// Secrets.
    pub secrets: Arc<dyn Secrets>,
    /// Clock.
    pub clock: Arc<ManualClock>,
    /// Ids.
    pub ids: Arc<SequentialIds>,
}

impl Default for OfflineAdapters {
    fn default() -> Self {
        OfflineAdapters {
            messenger: Arc::default(),
            model: Arc::default(),
            functions: Arc::default(),
            http: Arc::default(),
            mcp: Arc::default(),
            project_events: Arc::default(),
            secrets: Arc::new(EnvSecrets),
            clock: Arc::default(),
            ids: Arc::default(),
        }
    }
}

impl OfflineAdapters {
    /// As [`Adapters`] for the engine.
    pub fn adapters(&self) -> Adapters {
        Adapters {
            messenger: self.messenger.clone(),
            model: self.model.clone(),
            functions: self.functions.clone(),
            http: self.http.clone(),
            mcp: self.mcp.clone(),
            project_events: self.project_events.clone(),
            secrets: self.secrets.clone(),
            clock: self.clock.clone(),
            ids: self.ids.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(input: &str, conditions: &[(&str, &str)]) -> String {
        decide_reply(input, None, conditions)
    }

    fn decide_reply(input: &str, reply_id: Option<&str>, conditions: &[(&str, &str)]) -> String {
        let req = ChatRequest {
            model: "m".into(),
            purpose: Purpose::Decide {
                node_id: "d".into(),
                labels: conditions.iter().map(|(l, _)| (*l).to_owned()).collect(),
                conditions: conditions
                    .iter()
                    .map(|(l, d)| ((*l).to_owned(), (*d).to_owned()))
                    .collect(),
                last_user_input: input.into(),
                last_reply_id: reply_id.map(str::to_owned),
            },
            messages: vec![],
            tools: vec![],
            temperature: None,
            max_tokens: None,
            reasoning_effort: None,
        };
        OfflineModel::answer(&req).text.unwrap_or_default()
    }

    #[test]
    fn offline_decide_by_reply_id() {
        let c = [("sales", "Buying"), ("support", "Problems")];
        // The button's title shares no word with the conditions; its id is a label.
        assert_eq!(decide_reply("Help me", Some("support"), &c), "support");
        assert_eq!(decide_reply("Help me", Some("other"), &c), "sales");
    }

    #[test]
    fn offline_decide_by_word_overlap() {
        let c = [
            ("sales", "Wants to buy or asks about prices"),
            ("support", "Has a problem with an order"),
        ];
        assert_eq!(decide("I have a problem with my order", &c), "support");
        assert_eq!(decide("what are your prices", &c), "sales");
        assert_eq!(decide("support", &c), "support");
        assert_eq!(
            decide("hi", &c),
            "sales",
            "no overlap picks the first condition"
        );
        // Ties go to the earlier condition.
        assert_eq!(decide("order prices", &c), "sales");
    }

    #[tokio::test]
    async fn scripted_functions_remember_only_the_last_calls() {
        let f = ScriptedFunctions::default();
        f.answer("count", Value::Null);
        let vars = serde_json::Map::new();
        let payload = || Value::Null;
        let total = ScriptedFunctions::CALL_LOG_CAPACITY + 2;
        for n in 0..total {
            let node = format!("n{n}");
            let call = FunctionCall::new(
                Some("count"),
                None,
                "x1",
                &node,
                &vars,
                None,
                None,
                &payload,
            );
            assert_eq!(f.invoke(&call).await.unwrap(), Value::Null);
        }
        let calls = f.calls();
        assert_eq!(calls.len(), ScriptedFunctions::CALL_LOG_CAPACITY);
        assert_eq!(calls[0].node_id, "n2", "the two oldest calls were dropped");
        assert_eq!(
            calls.last().map(|c| c.node_id.as_str()),
            Some(&*format!("n{}", total - 1))
        );
    }
}
