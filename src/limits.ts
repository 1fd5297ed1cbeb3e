/**
 * Every limit and timing default in one place (cf. ws's maxPayload and friends), so an operator
 * reading the docs and an engineer reading the code find the same numbers. Config and CLI flags
 * override these; nothing else should hard-code a size or a timeout.
 */
export const LIMITS = {
  /** Largest signaling WebSocket frame the server accepts. */
  signalingMaxPayloadBytes: 1024 * 1024,
  /** Interval between WebSocket pings; a peer that misses two is dropped. */
  signalingPingIntervalMs: 15_000,
  /** A room with no peer for this long is removed. */
  roomIdleTtlMs: 24 * 60 * 60 * 1000,
  /** Frames above maxPayload but below this multiple of it get a FRAME_TOO_LARGE reply; larger ones make ws close the socket (1009) unread. */
  signalingHardPayloadFactor: 2,
  /** Per-connection token bucket: frames a peer may send at once, and the refill per second. */
  signalingRateLimitBurst: 200,
  signalingRateLimitPerSecond: 200,
  /** Upper bound on the idle-room sweep period (the sweep runs at least every roomIdleTtlMs / 2). */
  roomSweepMaxIntervalMs: 60_000,
  /** `room create` and other HTTP calls to the signaling server give up after this. */
  signalingHttpTimeoutMs: 10_000,
  /** A connection that has not registered within this is closed (4008). */
  signalingRegisterTimeoutMs: 30_000,
  /** Largest peer metadata object (serialized JSON bytes) the server stores. */
  signalingMaxMetadataBytes: 64 * 1024,
  /** A peer whose unsent outbound data exceeds this is a slow consumer; its socket is cut. */
  signalingMaxBufferedBytes: 16 * 1024 * 1024,
  /** Deepest JSON nesting accepted in a signaling frame (deeper input overflows JSON.stringify's stack). */
  signalingMaxJsonDepth: 64,
  /** On shutdown, peers get this long to answer the 1001 close frame before their sockets are cut. */
  signalingCloseGraceMs: 1000,
  /** Reconnect backoff for the signaling client. */
  reconnectInitialDelayMs: 250,
  reconnectMaxDelayMs: 30_000,
  /** WebRTC connection set-up must finish within this. */
  peerConnectTimeoutMs: 20_000,
  /** Where `sleap-rtc server` listens unless configured; loopback so nothing is exposed by accident. */
  signalingDefaultHost: '127.0.0.1',
  signalingDefaultPort: 8080,
  /** Jobs one worker runs at the same time unless `[worker] max_concurrent_jobs` says otherwise. */
  workerMaxConcurrentJobs: 1,
  /** On shutdown (SIGTERM from SLURM or Kubernetes, which SIGKILL after ~30 s), outputs still uploading get this long, then the upload is cancelled (`[worker] shutdown_grace_s`). */
  workerShutdownGraceMs: 20_000,
  /** Longest relative path (UTF-8 bytes) accepted from a peer; Linux PATH_MAX. */
  relativePathMaxBytes: 4096,
  /** Longest single path segment (UTF-8 bytes); NAME_MAX on common filesystems. */
  pathSegmentMaxBytes: 255,
  /** Symlinks followed while confining one path before giving up (the kernel's own limit is 40). */
  symlinkMaxHops: 40,
  /**
   * Files shown to sleap-nn from one input folder of a shared-storage job (a model folder): each
   * is held open by the worker for the job's lifetime (src/worker/job-files.ts).
   */
  jobInputFolderMaxFiles: 1024,
  // ---- peer connections and file transfer (src/transport; figures in docs/transfer.md) ----
  /** Bytes per binary data-channel message; libdatachannel's default SCTP max message size is 256 KiB. */
  transferChunkBytes: 256 * 1024,
  /** The sender stops queueing when the channel's bufferedAmount passes this... */
  transferBufferedHighBytes: 16 * 1024 * 1024,
  /** ...and resumes when it falls to this (bufferedAmountLowThreshold). */
  transferBufferedLowBytes: 4 * 1024 * 1024,
  /** Bytes the sender may have in flight beyond what the receiver has confirmed written to disk. */
  transferWindowBytes: 32 * 1024 * 1024,
  /** The receiver confirms written bytes (TRANSFER_PROGRESS) at least this often. */
  transferProgressEveryBytes: 2 * 1024 * 1024,
  /** Largest transfer a receiver accepts unless told otherwise. */
  transferMaxBytes: 1024 * 1024 * 1024 * 1024,
  /** Most entries (files + folders) in one received folder. */
  transferMaxEntries: 1_000_000,
  /** Channels of a folder's files (offered file by file) held on the worker before its receiver takes them. */
  folderHeldChannels: 8,
  /** Largest JSON control frame on a transfer channel. */
  transferControlMaxBytes: 64 * 1024,
  /** A transfer with no data or confirmation for this long fails with TRANSFER_STALLED. */
  transferStallTimeoutMs: 60_000,
  /** After its final message, a side waits this long for the other to close the channel. */
  transferLingerMs: 5_000,
  /** A resumable part file is synced, and its sidecar records the bytes, at least this often. */
  transferCheckpointBytes: 16 * 1024 * 1024,
  /** The worker's cache holds at most this many bytes unless `[worker] cache_max_bytes` says otherwise. */
  workerCacheMaxBytes: 100 * 1024 * 1024 * 1024,
  /** A finished transfer job's outputs wait on the worker this long for the client to take them (`[worker] results_keep_hours`). */
  workerResultsKeepMs: 24 * 60 * 60 * 1000,
  /** Signaling client: WebSocket open + `registered` reply must arrive within this. */
  signalingConnectTimeoutMs: 10_000,
  /** Signaling client: a discover request is answered within this. */
  signalingRequestTimeoutMs: 10_000,
  /** Signals (offer/answer/candidate) kept per peer until a peer connection subscribes. */
  signalingPendingSignalsPerPeer: 256,
  // ---- jobs (src/worker, src/protocol/job.ts; docs/jobs.md) ----
  /** A cancelled job gets SIGINT first (as Ctrl-C would, so sleap-nn can stop cleanly), SIGTERM after this... */
  jobCancelGraceMs: 15_000,
  /** ...and SIGKILL this much later. */
  jobKillGraceMs: 5_000,
  /** Longest sleap-nn output line kept or sent; longer ones are cut (progress bars can be huge). */
  jobLogMaxLineChars: 1000,
  /** Output lines kept for a failure report. */
  jobLogTailLines: 50,
  /** After sleap-nn exits, wait at most this for its pipes to close (a grandchild may hold them). */
  jobOutputDrainMs: 2_000,
  /** Largest job message (JSON text) on a data channel; same bound as transfer control frames. */
  jobMessageMaxBytes: 64 * 1024,
  /** nvidia-smi gets this long to answer before the worker advertises no GPU. */
  gpuProbeTimeoutMs: 5_000,
  /** Each start-up probe of sleap-nn (`--version`, `predict --help`) gets this long; Python imports can be slow on a cold disk. */
  sleapNnProbeTimeoutMs: 60_000,
  /** A file transfer one side announced (UPLOAD_REQUEST, a transfer JOB_COMPLETE) must start within this. */
  jobTransferStartTimeoutMs: 60_000,
  /** After Ctrl-C the client waits this long for JOB_CANCELLED (longer than the worker's SIGINT->SIGTERM->SIGKILL ladder). */
  jobCancelReplyTimeoutMs: 25_000,
  /** While the control channel holds more unsent bytes than this, sleap-nn log lines are dropped (and counted). */
  jobLogMaxBufferedBytes: 4 * 1024 * 1024,
  /** A session that closes (client gone, worker stopping) waits at most this for its last messages to leave. */
  jobCloseDrainMs: 1_000,
  /** When the server says a job's peer left the room, that peer gets this long to answer a PING on the direct connection before its job is given up. */
  peerProbeTimeoutMs: 4_000,
  // ---- training progress and steering (src/worker/progress-relay.ts, src/client/live; docs/jobs.md) ----
  /** Largest sleap-nn ZMQ progress event accepted; larger ones are dropped with a log line. */
  progressEventMaxBytes: 64 * 1024,
  /** Most metrics in one event's `logs`. */
  progressMaxLogKeys: 512,
  /** batch_end events go to the client at most once per this interval (the newest wins); epoch events always go. */
  progressBatchEventIntervalMs: 100,
  /** While the control channel holds more unsent bytes than this, batch_end events are not sent. */
  progressMaxBufferedBytes: 1024 * 1024,
  /** A dropped (malformed) progress event is logged at most once per this interval, with a count. */
  progressDropLogIntervalMs: 5_000,
  /** After sleap-nn exits, its last events are still read until none came for this long... */
  progressDrainQuietMs: 250,
  /** ...or this long at most. */
  progressDrainMaxMs: 5_000,
  /** Log lines the live page and --json keep. */
  progressLogTailLines: 200,
  /** Batch losses the client keeps for the live page's batch curve. */
  progressBatchPointsKept: 5_000,
  // ---- routing (src/signaling/routing*.ts; docs/routing.md) ----
  /** A reserved worker that has not claimed its reservation within this loses it; the job goes to the next match. */
  routingReservationTimeoutMs: 30_000,
  /** Longest `queue_timeout_s` a client may ask for (a week); absent means wait until cancelled. */
  routingMaxQueueTimeoutS: 7 * 24 * 60 * 60,
  /** Requests one client may have live at once (queued or holding a reservation). */
  routingMaxRequestsPerClient: 64,
  /** Requests one room may hold in its queue. */
  routingMaxQueuePerRoom: 10_000,
  /** Queue positions are re-reported at most this often per room (a new request hears its own at once). */
  routingPositionIntervalMs: 250,
  // ---- SLEAP labels files (src/slp) ----
  /** Videos one labels file may name; a `videos_json` with more is refused as invalid. */
  slpMaxVideos: 10_000,
  /** Largest `videos_json` read (bytes of all entries); the table of a real file is a few KiB. */
  slpMaxVideosJsonBytes: 16 * 1024 * 1024,
  // ---- signaling store and scale-out (src/signaling/stores, presence.ts; docs/signaling.md) ----
  /** Claim and queue deadlines in the store are swept this often by every server process (local timers make the deciding process prompt). */
  routingDeadlineSweepMs: 1_000,
  /** A server process renews its presence this often ... */
  presenceHeartbeatMs: 2_000,
  /**
   * ... and counts as dead once it has not for this long; its peers are then removed by the next
   * sweep. Long enough that a process stalled by a loaded machine is not taken for dead.
   */
  presenceTtlMs: 15_000,
  /** Every server process looks for dead processes this often (so a dead one's peers go within presenceTtlMs + this). */
  presenceSweepMs: 2_000,
  /** A peer re-registering under an id held on another process waits this long for that process to say whether it still holds it. */
  presenceProbeTimeoutMs: 1_000,
  /** Connecting to Redis at start gives up after this (then the server exits 1). */
  storeConnectTimeoutMs: 5_000,
  /** One Redis command gives up after this (the request fails with STORE_UNAVAILABLE). */
  storeCommandTimeoutMs: 5_000,
  /** Attempts at one atomic routing update before it fails (each conflict with another process costs one). */
  storeUpdateMaxAttempts: 100,
  /** Frames held for a peer while its registration is answered; past this the registration fails. */
  signalingMaxHeldFrames: 10_000,
  /** `POST /rooms` per client address: this many at once ... */
  roomCreateBurst: 20,
  /** ... and this many per hour after that (`[server] rooms_per_hour`). */
  roomCreatePerHour: 60,
  /** A deleted or expired room is remembered this long, so a peer coming back hears ROOM_DELETED, not ROOM_NOT_FOUND. */
  roomTombstoneTtlMs: 30 * 24 * 60 * 60 * 1000,
  /** Peers in one room (`[server] max_peers_per_room`). */
  maxPeersPerRoom: 2_000,
  /** Distinct video files one job request may name (the labels file's external videos; image sequences count each image). */
  jobMaxVideoFiles: 256,
} as const;
