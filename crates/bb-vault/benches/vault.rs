//! Cost of sealing and opening a 2 KB token: through `Vault` (a store read, a data key
//! unwrap and the AEAD), the bare envelope, and the "common design" that derives a key per
//! open with PBKDF2-HMAC-SHA256 at 100,000 iterations. Results are recorded in BENCHMARKS.md.
#![allow(clippy::unwrap_used, missing_docs)] // a benchmark that fails should panic loudly

#[path = "../tests/common/mod.rs"]
mod common;

use bb_core::ids::{DataKeyId, UserId};
use bb_core::ports::Sealer;
use bb_vault::{DataKey, envelope};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sha2::Sha256;
use std::hint::black_box;

const TOKEN_LEN: usize = 2048;
const CONTEXT: &str = "secret:connection/12/refresh_token";
const PBKDF2_ROUNDS: u32 = 100_000;

fn token() -> Vec<u8> {
    // Varied bytes, so nothing downstream can shortcut on a constant buffer.
    (0..TOKEN_LEN)
        .map(|i| u8::try_from(i * 31 % 251).unwrap())
        .collect()
}

fn bookbridge(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = common::MemoryKeyStore::new();
    let vault = rt.block_on(common::vault(&store, &[&common::key(1)]));
    let owner = UserId(1);
    let token = token();
    let sealed = rt.block_on(vault.seal(owner, CONTEXT, &token)).unwrap();

    let dek = DataKey::from_bytes([9; 32]);
    let key_id = DataKeyId(1);
    let enveloped = envelope::seal(&dek, key_id, owner, CONTEXT, &token).unwrap();

    let mut group = c.benchmark_group("vault_2kb");
    group.throughput(Throughput::Bytes(TOKEN_LEN as u64));
    group.bench_function(BenchmarkId::new("vault", "seal"), |b| {
        b.iter(|| rt.block_on(vault.seal(black_box(owner), CONTEXT, black_box(&token))));
    });
    group.bench_function(BenchmarkId::new("vault", "open"), |b| {
        b.iter(|| rt.block_on(vault.open(black_box(owner), CONTEXT, black_box(&sealed))));
    });
    group.bench_function(BenchmarkId::new("envelope", "seal"), |b| {
        b.iter(|| envelope::seal(&dek, key_id, black_box(owner), CONTEXT, black_box(&token)));
    });
    group.bench_function(BenchmarkId::new("envelope", "open"), |b| {
        b.iter(|| {
            envelope::open(
                &dek,
                key_id,
                black_box(owner),
                CONTEXT,
                black_box(&enveloped),
            )
        });
    });
    group.finish();
}

/// The design bookbridge avoids: no stored data keys, so every open re-derives the
/// user's key from the master key with a deliberately slow KDF.
fn common_design(c: &mut Criterion) {
    let master = [1u8; 32];
    let owner = UserId(1);
    let derive = |user: UserId| {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(&master, &user.0.to_be_bytes(), PBKDF2_ROUNDS, &mut key);
        key
    };
    let nonce = Nonce::from([3u8; 12]);
    let token = token();
    let sealed = ChaCha20Poly1305::new(&derive(owner).into())
        .encrypt(
            &nonce,
            Payload {
                msg: &token,
                aad: CONTEXT.as_bytes(),
            },
        )
        .unwrap();

    let mut group = c.benchmark_group("common_design_2kb");
    group.throughput(Throughput::Bytes(TOKEN_LEN as u64));
    group.sample_size(10);
    group.bench_function(
        BenchmarkId::new("pbkdf2_100k_chacha20poly1305", "open"),
        |b| {
            b.iter(|| {
                let key = derive(black_box(owner));
                ChaCha20Poly1305::new(&key.into())
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: black_box(&sealed),
                            aad: CONTEXT.as_bytes(),
                        },
                    )
                    .unwrap()
            });
        },
    );
    group.finish();
}

criterion_group!(benches, bookbridge, common_design);
criterion_main!(benches);
