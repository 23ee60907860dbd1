//! 32 concurrent clients (16 REST, 16 gRPC) mixing writes and searches: every
//! acknowledged write is readable, also after a restart.

mod common;

use common::{vector, TestServer};
use paradox_client::{Client, ClientConfig, NewPoint, PointId, Search};
use serde_json::json;

const CLIENTS: u64 = 32;
const ROUNDS: u64 = 15;
const BATCH: u64 = 4;
const DIM: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_searchers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let server = paradox_server::start(config.clone()).await.unwrap();
    let s = TestServer::wrap(server, tempfile::tempdir().unwrap());
    let (status, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "c", "dimension": DIM, "metric": "l2"})),
        )
        .await;
    assert_eq!(status, 201);

    let mut tasks = Vec::new();
    for client_id in 0..CLIENTS {
        let (http, base, grpc) = (s.http.clone(), s.base.clone(), s.grpc.clone());
        tasks.push(tokio::spawn(async move {
            let grpc_client = if client_id % 2 == 1 {
                Some(Client::connect(ClientConfig::new(grpc)).await.unwrap())
            } else {
                None
            };
            let mut acknowledged = Vec::new();
            for round in 0..ROUNDS {
                let ids: Vec<u64> = (0..BATCH)
                    .map(|j| client_id * 10_000 + round * BATCH + j)
                    .collect();
                let ok = match &grpc_client {
                    Some(client) => {
                        let points = ids
                            .iter()
                            .map(|&i| NewPoint::new(i, vector(i, DIM)))
                            .collect();
                        client.upsert("c", points).await.is_ok()
                    }
                    None => {
                        let points: Vec<_> = ids
                            .iter()
                            .map(|&i| json!({"id": i, "vector": vector(i, DIM)}))
                            .collect();
                        http.put(format!("{base}/v1/collections/c/points"))
                            .json(&json!({"points": points}))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                    }
                };
                if ok {
                    acknowledged.extend(ids.iter().copied());
                }
                // A search for a point this client just wrote finds it (read-your-writes).
                let probe = ids[0];
                let found = match &grpc_client {
                    Some(client) => client
                        .search("c", Search::new(vector(probe, DIM), 1))
                        .await
                        .map(|hits| hits[0].score)
                        .unwrap(),
                    None => {
                        let body: serde_json::Value = http
                            .post(format!("{base}/v1/collections/c/search"))
                            .json(&json!({"vector": vector(probe, DIM), "k": 1}))
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        body["hits"][0]["score"].as_f64().unwrap() as f32
                    }
                };
                if ok {
                    assert!(
                        found < 1e-6,
                        "client {client_id} round {round}: own write not found"
                    );
                }
            }
            acknowledged
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(
        all.len() as u64,
        CLIENTS * ROUNDS * BATCH,
        "every write was acknowledged"
    );

    let check = |grpc: String, all: Vec<u64>| async move {
        let client = Client::connect(ClientConfig::new(grpc)).await.unwrap();
        assert_eq!(client.count("c", None).await.unwrap(), all.len() as u64);
        for chunk in all.chunks(500) {
            let ids: Vec<PointId> = chunk.iter().map(|&i| PointId::Num(i)).collect();
            let got = client.get("c", &ids, true).await.unwrap();
            assert_eq!(got.len(), chunk.len());
            for (point, &id) in got.iter().zip(chunk) {
                assert_eq!(point.id, PointId::Num(id));
                assert_eq!(point.vector, vector(id, DIM));
            }
        }
    };
    check(s.grpc.clone(), all.clone()).await;
    let server = s.server.unwrap();
    server.shutdown();
    server.wait().await.unwrap();

    let server = paradox_server::start(config).await.unwrap();
    check(format!("http://{}", server.grpc_addr.unwrap()), all).await;
    server.shutdown();
    server.wait().await.unwrap();
}
