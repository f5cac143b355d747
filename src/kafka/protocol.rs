//! Requests, responses and error codes exchanged between Kafka nodes (the subset the model
//! speaks). Names follow Kafka's protocol (`ApiKeys`, `Errors`).

use crate::kafka::epoch::EpochEnd;
use crate::kafka::log::{Batch, RecordRange};
use crate::kafka::{MetadataImage, PartitionState, Pidx};
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
    NotEnoughReplicasAfterAppend,
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    InvalidUpdateVersion,
    IneligibleReplica,
    MemberIdRequired,
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    FencedInstanceId,
    InconsistentGroupProtocol,
    CoordinatorNotAvailable,
    /// A registration while the broker's previous incarnation still has a valid session.
    DuplicateBrokerRegistration,
    /// A heartbeat from an incarnation the controller no longer knows.
    StaleBrokerEpoch,
    /// A request to a controller that is not the active one.
    NotController,
    /// Not a wire error: the client refuses a commit itself when it is not a stable
    /// member of the group (`CommitFailedException`).
    CommitFailed,
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
            ErrorCode::NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::DuplicateBrokerRegistration => "DUPLICATE_BROKER_REGISTRATION",
            ErrorCode::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorCode::NotController => "NOT_CONTROLLER",
            ErrorCode::CommitFailed => "CommitFailedException",
        }
    }

    /// Whether the exception extends `RetriableException` (`Errors.java`). The producer
    /// retries these; OUT_OF_ORDER_SEQUENCE_NUMBER is not one of them but the idempotent
    /// producer retries it on its own terms (`TransactionManager.canRetry`), and
    /// INVALID_PRODUCER_EPOCH fails the batch.
    pub fn retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::RequestTimedOut
                | ErrorCode::NetworkException
                | ErrorCode::NotCoordinator
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::CoordinatorNotAvailable
        )
    }

    /// Whether the client should refresh its metadata (`InvalidMetadataException`, or a
    /// disconnect).
    pub fn refresh_metadata(self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::NetworkException
                | ErrorCode::RequestTimedOut
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
        )
    }
}

impl Msg {
    /// Whether the message answers a request of the receiver's, and so travels on the
    /// connection the receiver opened (the controller's metadata updates answer a
    /// broker's registration, as a KRaft broker fetches its metadata).
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Msg::MetadataResponse { .. }
                | Msg::ProduceResponse { .. }
                | Msg::FetchResponse { .. }
                | Msg::ListOffsetsResponse { .. }
                | Msg::FindCoordinatorResponse { .. }
                | Msg::OffsetCommitResponse { .. }
                | Msg::OffsetFetchResponse { .. }
                | Msg::JoinGroupResponse { .. }
                | Msg::SyncGroupResponse { .. }
                | Msg::HeartbeatResponse { .. }
                | Msg::LeaveGroupResponse { .. }
                | Msg::BrokerHeartbeatResponse { .. }
                | Msg::QuorumFetchResponse { .. }
                | Msg::VoteResponse { .. }
                | Msg::MetadataUpdate { .. }
                | Msg::AlterPartitionResponse { .. }
                | Msg::OffsetsForLeaderEpochResponse { .. }
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
#[rustfmt::skip]
pub enum Msg {
    MetadataRequest { id: u64 },
    MetadataResponse { id: u64, partitions: Vec<PartitionMetadata> },
    /// `timeout_ms` is the producer's `request.timeout.ms`: how long an `acks=all` append
    /// may wait for the ISR.
    ProduceRequest { id: u64, acks: AcksMode, idempotent: bool, timeout_ms: u64, batches: Vec<(Pidx, Batch)> },
    ProduceResponse { id: u64, results: Vec<(Pidx, Result<u64, ErrorCode>)> },
    /// `replica` is the follower's broker id; consumers send `None`.
    FetchRequest {
        id: u64,
        replica: Option<u32>,
        partitions: Vec<FetchPartition>,
        max_wait_ms: u64,
        min_bytes: u32,
        max_partition_bytes: u32,
    },
    FetchResponse { id: u64, partitions: Vec<FetchedPartition> },
    ListOffsetsRequest { id: u64, spec: OffsetSpec, partitions: Vec<Pidx> },
    ListOffsetsResponse { id: u64, offsets: Vec<(Pidx, Result<u64, ErrorCode>)> },
    FindCoordinatorRequest { id: u64, group: u32 },
    FindCoordinatorResponse { id: u64, coordinator: Result<u32, ErrorCode> },
    /// `generation` -1 and an empty `member_id` commit outside the group protocol.
    OffsetCommitRequest { id: u64, group: u32, generation: i32, member_id: String, offsets: Vec<(Pidx, u64)> },
    OffsetCommitResponse { id: u64, result: Result<Vec<(Pidx, u64)>, ErrorCode> },
    OffsetFetchRequest { id: u64, group: u32, partitions: Vec<Pidx> },
    OffsetFetchResponse { id: u64, result: Result<Vec<(Pidx, Option<u64>)>, ErrorCode> },
    /// `member` is the member's index in its group (its client id); `protocols` are the
    /// assignors it supports, in preference order.
    JoinGroupRequest {
        id: u64,
        #[serde(flatten)]
        join: Box<JoinGroup>,
    },
    /// On MEMBER_ID_REQUIRED the error carries the member id to join with.
    JoinGroupResponse { id: u64, result: Result<Box<JoinResult>, (ErrorCode, String)> },
    SyncGroupRequest { id: u64, group: u32, generation: i32, member_id: String, assignments: Vec<(String, Vec<Pidx>)> },
    SyncGroupResponse { id: u64, result: Result<Vec<Pidx>, ErrorCode> },
    HeartbeatRequest { id: u64, group: u32, generation: i32, member_id: String },
    HeartbeatResponse { id: u64, error: Option<ErrorCode> },
    LeaveGroupRequest { id: u64, group: u32, member_id: String },
    LeaveGroupResponse { id: u64 },
    /// `broker_epoch` is `None` when the broker (re)registers; `clean_shutdown` then says
    /// whether its last incarnation shut down cleanly (the `PreviousBrokerEpoch` it read
    /// from its clean-shutdown file, KIP-966).
    /// `want_shutdown`: the broker is in controlled shutdown (`wantShutDown`).
    BrokerHeartbeat { broker_epoch: Option<u64>, metadata_version: u64, clean_shutdown: bool, want_shutdown: bool },
    /// `image` comes when the broker's metadata is older than the controller's.
    BrokerHeartbeatResponse {
        broker_epoch: Option<u64>,
        fenced: bool,
        image: Option<MetadataImage>,
        error: Option<ErrorCode>,
        /// The controller lets the broker in controlled shutdown stop (`shouldShutDown`).
        shutdown_now: bool,
        /// With NOT_CONTROLLER: the voter the answering controller knows as leader.
        controller: Option<u32>,
    },
    /// Raft among the controllers: a follower's fetch of the metadata log.
    QuorumFetch { epoch: u32, version: u64, last_epoch: u32 },
    /// The leader's answer: its state whole when the follower's log differs.
    QuorumFetchResponse {
        epoch: u32,
        leader: Option<u32>,
        snapshot: Option<Box<crate::kafka::controller::Snapshot>>,
        committed: u64,
    },
    /// A (pre-)vote request (KIP-996: `pre` does not bump the epoch).
    Vote { epoch: u32, pre: bool, last_epoch: u32, version: u64 },
    VoteResponse { epoch: u32, pre: bool, granted: bool },
    /// A new leader announces its epoch.
    BeginQuorumEpoch { epoch: u32 },
    /// The controller publishes every change to every broker (a lone controller), or
    /// answers a broker's metadata fetch with it (a quorum's active controller).
    MetadataUpdate { image: MetadataImage },
    /// A broker's fetch of the committed metadata from a quorum's active controller.
    MetadataFetch { version: u64 },
    AlterPartitionRequest { id: u64, partition: Pidx, leader_epoch: u32, partition_epoch: u32, isr: Vec<u32> },
    AlterPartitionResponse { id: u64, partition: Pidx, result: Result<PartitionState, ErrorCode> },
    /// A follower's latest epoch per partition (KIP-101 mode).
    OffsetsForLeaderEpochRequest { id: u64, partitions: Vec<(Pidx, Option<u32>)> },
    OffsetsForLeaderEpochResponse { id: u64, partitions: Vec<(Pidx, Result<EpochEnd, ErrorCode>)> },
}

/// A JoinGroup's contents, boxed: the largest message otherwise sets the size of every
/// message the engine moves.
#[derive(Clone, Debug, Serialize)]
pub struct JoinGroup {
    pub group: u32,
    pub member: u32,
    pub member_id: String,
    pub instance: Option<String>,
    pub protocols: Vec<String>,
    pub subscription: Subscription,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
}

/// What a member sends with its JoinGroup (`ConsumerProtocolSubscription`): its topics,
/// the partitions it owns and the generation it owned them in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub topics: Vec<usize>,
    pub owned: Vec<Pidx>,
    pub generation: i32,
}

/// A completed join: the generation, the chosen assignor, the leader and, for the leader
/// only, every member with its subscription, in the order they joined.
#[derive(Clone, Debug, Serialize)]
pub struct JoinResult {
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<(String, Option<String>, Subscription)>,
}

/// One partition of a fetch.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FetchPartition {
    pub partition: Pidx,
    pub offset: u64,
    /// The fetcher's view of the leader epoch (KIP-320); consumers send `None` here.
    pub current_leader_epoch: Option<u32>,
    /// The epoch of the follower's last record, for the divergence check (Kafka 2.8+).
    pub last_fetched_epoch: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FetchedPartition {
    pub partition: Pidx,
    pub fetch_offset: u64,
    pub result: Result<Vec<RecordRange>, ErrorCode>,
    pub high_watermark: u64,
    pub log_end_offset: u64,
    /// Set when the follower's log diverges from the leader's: where to truncate to.
    pub diverging: Option<EpochEnd>,
    /// The leader epoch the request was sent in, as the follower's fetcher remembers its
    /// request (`sessionPartitions`); carried back here instead.
    pub request_epoch: Option<u32>,
}
