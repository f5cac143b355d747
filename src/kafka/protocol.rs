//! Requests, responses and error codes exchanged between Kafka nodes (the subset the model
//! speaks). Names follow Kafka's protocol (`ApiKeys`, `Errors`).

use crate::kafka::Pidx;
use crate::kafka::log::{Batch, RecordRange};
use serde::Serialize;

/// Kafka error codes (`org.apache.kafka.common.protocol.Errors`), by name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    OffsetOutOfRange,
    NotLeaderOrFollower,
    RequestTimedOut,
    NetworkException,
    NotCoordinator,
    NotEnoughReplicas,
    OutOfOrderSequenceNumber,
}

impl ErrorCode {
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::NetworkException => "NETWORK_EXCEPTION",
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        }
    }

    /// Whether the producer may retry (the exception extends `RetriableException`).
    pub fn retriable(self) -> bool {
        true
    }

    /// Whether the client should refresh its metadata (`InvalidMetadataException`, or a
    /// disconnect).
    pub fn refresh_metadata(self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeaderOrFollower | ErrorCode::NetworkException | ErrorCode::RequestTimedOut
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcksMode {
    Zero,
    One,
    All,
}

/// One partition's entry in a metadata response.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct PartitionMetadata {
    pub leader: Option<u32>,
    pub leader_epoch: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetSpec {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "api", rename_all = "snake_case")]
pub enum Msg {
    MetadataRequest {
        id: u64,
    },
    MetadataResponse {
        id: u64,
        partitions: Vec<PartitionMetadata>,
    },
    ProduceRequest {
        id: u64,
        acks: AcksMode,
        idempotent: bool,
        batches: Vec<(Pidx, Batch)>,
    },
    ProduceResponse {
        id: u64,
        results: Vec<(Pidx, Result<u64, ErrorCode>)>,
    },
    FetchRequest {
        id: u64,
        partitions: Vec<(Pidx, u64)>,
        max_wait_ms: u64,
        min_bytes: u32,
        max_partition_bytes: u32,
    },
    FetchResponse {
        id: u64,
        partitions: Vec<FetchedPartition>,
    },
    ListOffsetsRequest {
        id: u64,
        spec: OffsetSpec,
        partitions: Vec<Pidx>,
    },
    ListOffsetsResponse {
        id: u64,
        offsets: Vec<(Pidx, Result<u64, ErrorCode>)>,
    },
    FindCoordinatorRequest {
        id: u64,
        group: u32,
    },
    FindCoordinatorResponse {
        id: u64,
        coordinator: u32,
    },
    OffsetCommitRequest {
        id: u64,
        group: u32,
        offsets: Vec<(Pidx, u64)>,
    },
    OffsetCommitResponse {
        id: u64,
        result: Result<Vec<(Pidx, u64)>, ErrorCode>,
    },
    OffsetFetchRequest {
        id: u64,
        group: u32,
        partitions: Vec<Pidx>,
    },
    OffsetFetchResponse {
        id: u64,
        result: Result<Vec<(Pidx, Option<u64>)>, ErrorCode>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct FetchedPartition {
    pub partition: Pidx,
    pub fetch_offset: u64,
    pub result: Result<Vec<RecordRange>, ErrorCode>,
    pub high_watermark: u64,
}
