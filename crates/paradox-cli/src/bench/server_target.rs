//! The servers `paradox bench server` drives, behind one interface: Paradox over gRPC
//! (`paradox-client`), Paradox over REST (JSON over HTTP/1.1) and Chroma over its HTTP API
//! v2 (JSON over HTTP/1.1). All three are driven from Rust in the same process, so the
//! load generator's own CPU cost per request is of the same kind for each.
//!
//! A [`Connection`] is one worker's own: one HTTP/2 connection for gRPC, one pooled
//! HTTP/1.1 connection for REST and Chroma (a worker sends one request at a time). Ids
//! come back as numbers: Chroma's string ids are the decimal row numbers this module
//! wrote when loading it.

use anyhow::{anyhow, bail, ensure, Context, Result};
use paradox_client::{Client, ClientConfig, NewPoint, PointId, Search};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

use crate::formats::Matrix;

/// Chroma's tenant and database for everything the benchmark creates.
const CHROMA_SCOPE: &str = "api/v2/tenants/default_tenant/databases/default_database";
/// Rows per Chroma `add` (its server caps a batch at 5,461).
const CHROMA_BATCH: usize = 5_000;

/// Which server, over which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Paradox over gRPC.
    Grpc,
    /// Paradox over REST.
    Rest,
    /// Chroma over HTTP.
    Chroma,
}

impl Kind {
    /// The name in reports.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Grpc => "paradox_grpc",
            Kind::Rest => "paradox_rest",
            Kind::Chroma => "chroma",
        }
    }
}

/// Where a target lives and the collection it serves.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// Server and protocol.
    pub kind: Kind,
    /// Base URL, e.g. `http://127.0.0.1:8334`.
    pub url: String,
    /// Paradox API key, if the server wants one.
    pub api_key: Option<String>,
    /// Collection name.
    pub collection: String,
    /// Chroma's id (a UUID) for the collection; found by [`Endpoint::resolve`].
    pub chroma_id: Option<String>,
}

impl Endpoint {
    /// A target of `kind` at `url`.
    pub(super) fn new(kind: Kind, url: &str, api_key: Option<String>, collection: &str) -> Self {
        Endpoint {
            kind,
            url: url.trim_end_matches('/').to_string(),
            api_key,
            collection: collection.to_string(),
            chroma_id: None,
        }
    }

    /// Checks the collection exists (and for Chroma, finds its id).
    pub(super) async fn resolve(&mut self) -> Result<()> {
        match self.kind {
            Kind::Chroma => {
                let http = http_client()?;
                self.chroma_id = Some(
                    chroma_collection_id(&http, &self.url, &self.collection)
                        .await?
                        .ok_or_else(|| {
                            anyhow!(
                                "Chroma at {} has no collection `{}`: load it with --load-chroma",
                                self.url,
                                self.collection
                            )
                        })?,
                );
            }
            Kind::Grpc | Kind::Rest => {
                if self.kind == Kind::Grpc {
                    let client = grpc_client(&self.url, &self.api_key).await?;
                    let info = client.collection(&self.collection).await.with_context(|| {
                        format!("collection `{}` at {}", self.collection, self.url)
                    })?;
                    ensure!(
                        info.points > 0,
                        "collection `{}` at {} is empty",
                        self.collection,
                        self.url
                    );
                } else {
                    let http = http_client()?;
                    let url = format!("{}/v1/collections/{}", self.url, self.collection);
                    let mut request = http.get(&url);
                    if let Some(key) = &self.api_key {
                        request = request.bearer_auth(key);
                    }
                    let response = request.send().await.with_context(|| format!("GET {url}"))?;
                    let status = response.status();
                    ensure!(
                        status.is_success(),
                        "GET {url}: {status} {}",
                        response.text().await.unwrap_or_default()
                    );
                }
            }
        }
        Ok(())
    }
}

/// One worker's connection to a target.
#[derive(Debug)]
pub(super) enum Connection {
    /// gRPC: a client with its own HTTP/2 connection.
    Grpc {
        /// The client (no retries: failures are counted, not hidden).
        client: Box<Client>,
        /// Collection name.
        collection: String,
    },
    /// JSON over HTTP/1.1 (Paradox REST or Chroma).
    Http {
        /// Server and protocol (`Rest` or `Chroma`).
        kind: Kind,
        /// A client holding one keep-alive connection.
        http: reqwest::Client,
        /// The search (REST) or query (Chroma) URL.
        search_url: String,
        /// The upsert URL.
        upsert_url: String,
        /// Paradox API key.
        api_key: Option<String>,
    },
}

/// REST search body (`POST /v1/collections/{name}/search`).
#[derive(Serialize)]
struct RestSearch<'a> {
    vector: &'a [f32],
    k: usize,
    with_payload: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<RestParams>,
}

#[derive(Serialize)]
struct RestParams {
    ef: usize,
}

#[derive(Deserialize)]
struct RestHits {
    hits: Vec<RestHit>,
}

#[derive(Deserialize)]
struct RestHit {
    id: Value,
}

/// Chroma query body.
#[derive(Serialize)]
struct ChromaQuery<'a> {
    query_embeddings: [&'a [f32]; 1],
    n_results: usize,
    include: [&'static str; 1],
}

#[derive(Deserialize)]
struct ChromaIds {
    ids: Vec<Vec<String>>,
}

/// A reqwest client that keeps one idle connection per host, with Nagle off.
fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build an HTTP client")
}

async fn grpc_client(url: &str, api_key: &Option<String>) -> Result<Client> {
    let mut config = ClientConfig::new(url);
    config.api_key = api_key.clone();
    config.max_retries = 0;
    config.timeout = Duration::from_secs(60);
    Client::connect(config)
        .await
        .with_context(|| format!("connecting to {url}"))
}

fn numeric_id(id: &Value) -> Result<u64> {
    match id {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| anyhow!("id {n} is not a row number")),
        Value::String(s) => s
            .parse()
            .map_err(|_| anyhow!("id `{s}` is not a row number")),
        other => bail!("unexpected id {other}"),
    }
}

impl Connection {
    /// Opens a connection to `endpoint` (resolved).
    pub(super) async fn open(endpoint: &Endpoint) -> Result<Connection> {
        let base = &endpoint.url;
        match endpoint.kind {
            Kind::Grpc => Ok(Connection::Grpc {
                client: Box::new(grpc_client(base, &endpoint.api_key).await?),
                collection: endpoint.collection.clone(),
            }),
            Kind::Rest => {
                let collection = format!("{base}/v1/collections/{}", endpoint.collection);
                Ok(Connection::Http {
                    kind: Kind::Rest,
                    http: http_client()?,
                    search_url: format!("{collection}/search"),
                    upsert_url: format!("{collection}/points"),
                    api_key: endpoint.api_key.clone(),
                })
            }
            Kind::Chroma => {
                let id = endpoint
                    .chroma_id
                    .as_deref()
                    .ok_or_else(|| anyhow!("the Chroma collection was not resolved"))?;
                let collection = format!("{base}/{CHROMA_SCOPE}/collections/{id}");
                Ok(Connection::Http {
                    kind: Kind::Chroma,
                    http: http_client()?,
                    search_url: format!("{collection}/query"),
                    upsert_url: format!("{collection}/upsert"),
                    api_key: None,
                })
            }
        }
    }

    /// The ids of the `k` nearest neighbours of `vector`, best first. `ef` is Paradox's
    /// per-request beam width (Chroma's is a collection setting).
    pub(super) async fn search(
        &self,
        vector: &[f32],
        k: usize,
        ef: Option<usize>,
    ) -> Result<Vec<u64>> {
        match self {
            Connection::Grpc { client, collection } => {
                let mut search = Search::new(vector.to_vec(), k);
                search.with_payload = false;
                search.ef = ef;
                let hits = client.search(collection, search).await?;
                hits.into_iter()
                    .map(|hit| match hit.id {
                        PointId::Num(n) => Ok(n),
                        PointId::Str(s) => bail!("id `{s}` is not a row number"),
                    })
                    .collect()
            }
            Connection::Http {
                kind,
                http,
                search_url,
                api_key,
                ..
            } => {
                let mut request = http.post(search_url);
                request = if *kind == Kind::Rest {
                    request.json(&RestSearch {
                        vector,
                        k,
                        with_payload: false,
                        params: ef.map(|ef| RestParams { ef }),
                    })
                } else {
                    request.json(&ChromaQuery {
                        query_embeddings: [vector],
                        n_results: k,
                        include: ["distances"],
                    })
                };
                if let Some(key) = api_key {
                    request = request.bearer_auth(key);
                }
                let body = checked(request.send().await?).await?;
                if *kind == Kind::Rest {
                    let hits: RestHits =
                        serde_json::from_slice(body.as_ref()).context("reading a search answer")?;
                    hits.hits.iter().map(|hit| numeric_id(&hit.id)).collect()
                } else {
                    let ids: ChromaIds =
                        serde_json::from_slice(body.as_ref()).context("reading a query answer")?;
                    let row = ids.ids.into_iter().next().unwrap_or_default();
                    row.iter()
                        .map(|id| {
                            id.parse()
                                .map_err(|_| anyhow!("id `{id}` is not a row number"))
                        })
                        .collect()
                }
            }
        }
    }

    /// Writes point `id` with `vector` (replacing it if present).
    pub(super) async fn upsert(&self, id: u64, vector: &[f32]) -> Result<()> {
        match self {
            Connection::Grpc { client, collection } => {
                client
                    .upsert(collection, vec![NewPoint::new(id, vector.to_vec())])
                    .await?;
            }
            Connection::Http {
                kind,
                http,
                upsert_url,
                api_key,
                ..
            } => {
                let mut request = if *kind == Kind::Rest {
                    http.put(upsert_url)
                        .json(&json!({"points": [{"id": id, "vector": vector}]}))
                } else {
                    http.post(upsert_url)
                        .json(&json!({"ids": [id.to_string()], "embeddings": [vector]}))
                };
                if let Some(key) = api_key {
                    request = request.bearer_auth(key);
                }
                checked(request.send().await?).await?;
            }
        }
        Ok(())
    }
}

/// The body of a successful answer, or an error naming the status and the server's text.
async fn checked(response: reqwest::Response) -> Result<impl AsRef<[u8]>> {
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Chroma's id of collection `name`, if it exists.
async fn chroma_collection_id(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Result<Option<String>> {
    let url = format!("{base}/{CHROMA_SCOPE}/collections/{name}");
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = checked(response).await?;
    let info: Value = serde_json::from_slice(body.as_ref())?;
    Ok(info["id"].as_str().map(str::to_string))
}

/// HNSW settings for a Chroma collection.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChromaHnsw {
    /// Links per node (`max_neighbors`).
    pub m: usize,
    /// Build beam width.
    pub ef_construction: usize,
    /// Search beam width.
    pub ef_search: usize,
}

/// (Re)creates Chroma collection `name` (cosine, `hnsw`) and adds every row of `base` with
/// the row number as its id. Returns the seconds the adds took.
pub(super) async fn load_chroma(
    base_url: &str,
    name: &str,
    hnsw: ChromaHnsw,
    base: &Matrix,
) -> Result<f64> {
    let http = http_client()?;
    let base_url = base_url.trim_end_matches('/');
    if chroma_collection_id(&http, base_url, name).await?.is_some() {
        let url = format!("{base_url}/{CHROMA_SCOPE}/collections/{name}");
        checked(http.delete(&url).send().await?)
            .await
            .with_context(|| format!("DELETE {url}"))?;
    }
    let url = format!("{base_url}/{CHROMA_SCOPE}/collections");
    let created = checked(
        http.post(&url)
            .json(&json!({
                "name": name,
                "configuration": {"hnsw": {
                    "space": "cosine",
                    "max_neighbors": hnsw.m,
                    "ef_construction": hnsw.ef_construction,
                    "ef_search": hnsw.ef_search,
                }},
            }))
            .send()
            .await?,
    )
    .await
    .with_context(|| format!("creating Chroma collection `{name}`"))?;
    let created: Value = serde_json::from_slice(created.as_ref())?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow!("Chroma answered a create without an id: {created}"))?;
    let add_url = format!("{base_url}/{CHROMA_SCOPE}/collections/{id}/add");
    let started = std::time::Instant::now();
    for first in (0..base.rows).step_by(CHROMA_BATCH) {
        let last = (first + CHROMA_BATCH).min(base.rows);
        let ids: Vec<String> = (first..last).map(|row| row.to_string()).collect();
        let embeddings: Vec<&[f32]> = (first..last).map(|row| base.row(row)).collect();
        checked(
            http.post(&add_url)
                .json(&json!({"ids": ids, "embeddings": embeddings}))
                .send()
                .await?,
        )
        .await
        .with_context(|| format!("adding rows {first}..{last} to Chroma"))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Sets Chroma collection `name`'s `ef_search`. Chroma may apply it only to a newly
/// started server process: restart it before measuring.
pub(super) async fn set_chroma_ef(base_url: &str, name: &str, ef_search: usize) -> Result<()> {
    let http = http_client()?;
    let base_url = base_url.trim_end_matches('/');
    let id = chroma_collection_id(&http, base_url, name)
        .await?
        .ok_or_else(|| anyhow!("Chroma at {base_url} has no collection `{name}`"))?;
    let url = format!("{base_url}/{CHROMA_SCOPE}/collections/{id}");
    checked(
        http.put(&url)
            .json(&json!({"new_configuration": {"hnsw": {"ef_search": ef_search}}}))
            .send()
            .await?,
    )
    .await
    .with_context(|| format!("setting ef_search of Chroma collection `{name}`"))?;
    Ok(())
}
