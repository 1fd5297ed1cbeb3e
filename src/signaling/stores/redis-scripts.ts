/**
 * The Lua scripts of the Redis store: each is one atomic step over a room's keys. They only
 * store: ids to try are computed by the caller (peerIdCandidate), and routing decisions are made
 * in TypeScript (routing-policy.ts) and written with APPLY_ROUTING, a compare-and-set on the room's
 * routing version and peers version that stores only what changed (redis-routing.ts).
 *
 * Keys (P is the prefix, "srtc:"):
 *   P rooms              set of room ids
 *   P room:<r>           hash rec (RoomRecord JSON), seq (join counter), pv (peers version); kept until the room is deleted
 *   P peers:<r>          hash peer id -> "joinseq \t role \t node \t metadata JSON"
 *   P peer:<p>           string: the peer's room (makes ids unique across rooms)
 *   P npeers:<node>      set of the peer ids a server process registered
 *   P nodes              zset node -> alive until (ms)
 *   P routing:<r>        hash v (routing version), s (arrival counter), a (assignment counter), o (reservation order counter)
 *   P rq:<r>             zset: queued requests (JSON) by arrival seq
 *   P rr:<r>             hash reservation id -> "order \t ReservationRecord JSON"
 *   P rl:<r>             hash worker id -> its last assignment number
 *   P rlog:<r>           list: the last redis-routing.ts LOG_LENGTH changes (JSON), oldest first
 *   P due                zset room -> its earliest claim or queue deadline
 *   P count              hash worker / client -> peers
 *   P deleted:<r>        string: when the room was deleted (expires after LIMITS.roomTombstoneTtlMs)
 * Rooms have no idle expiry here: they are kept until deleted (DELETE /rooms/<id>), so they
 * outlive every server process (and, with AOF, Redis restarts). An older version's P idle zset
 * is dropped when a store opens.
 * Standalone Redis only: the scripts build some key names themselves (not Redis Cluster safe).
 */

/** KEYS: room, rooms. ARGV: id, record JSON, prefix. Returns 1 created, 0 the id is taken. */
export const CREATE_ROOM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', ARGV[3] .. 'deleted:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'seq', 0, 'pv', 0)
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/**
 * KEYS: room, rooms, peers, routing, due, count. ARGV: id, prefix, now, tombstone TTL. Returns
 * the peers hash as a flat list, or false when there was no such room.
 */
export const DELETE_ROOM = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local role, node = string.match(all[i + 1], '^%d+\\t([^\\t]*)\\t([^\\t]*)\\t')
  redis.call('DEL', ARGV[2] .. 'peer:' .. all[i])
  redis.call('SREM', ARGV[2] .. 'npeers:' .. node, all[i])
  redis.call('HINCRBY', KEYS[6], role, -1)
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], ARGV[2] .. 'rq:' .. ARGV[1], ARGV[2] .. 'rr:' .. ARGV[1], ARGV[2] .. 'rl:' .. ARGV[1], ARGV[2] .. 'rlog:' .. ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('SET', ARGV[2] .. 'deleted:' .. ARGV[1], ARGV[3], 'PX', ARGV[4])
return all
`;

/**
 * KEYS: room, peers, count. ARGV: room id, max peers ('' none), role, node, metadata JSON,
 * prefix, candidate ids... Returns {1, id}, {0} no such room, {-1} full, {2} every candidate taken.
 */
export const ADD_PEER = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if ARGV[2] ~= '' and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {-1} end
for i = 7, #ARGV do
  local id = ARGV[i]
  if redis.call('SET', ARGV[6] .. 'peer:' .. id, ARGV[1], 'NX') then
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('HSET', KEYS[2], id, seq .. '\\t' .. ARGV[3] .. '\\t' .. ARGV[4] .. '\\t' .. ARGV[5])
    redis.call('SADD', ARGV[6] .. 'npeers:' .. ARGV[4], id)
    redis.call('HINCRBY', KEYS[1], 'pv', 1)
    redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
    return {1, id}
  end
end
return {2}
`;

/** KEYS: count. ARGV: peer id, prefix. Returns {room, value} or false when the peer is gone. */
export const REMOVE_PEER = `
local pkey = ARGV[2] .. 'peer:' .. ARGV[1]
local room = redis.call('GET', pkey)
if not room then return false end
redis.call('DEL', pkey)
local peers = ARGV[2] .. 'peers:' .. room
local v = redis.call('HGET', peers, ARGV[1])
if not v then return false end
redis.call('HDEL', peers, ARGV[1])
local role, node = string.match(v, '^%d+\\t([^\\t]*)\\t([^\\t]*)\\t')
redis.call('SREM', ARGV[2] .. 'npeers:' .. node, ARGV[1])
redis.call('HINCRBY', KEYS[1], role, -1)
local rkey = ARGV[2] .. 'room:' .. room
if redis.call('EXISTS', rkey) == 1 then redis.call('HINCRBY', rkey, 'pv', 1) end
return {room, v}
`;

/** ARGV: peer id, prefix, metadata JSON ('' to only read). Returns {room, value} or false. */
export const PEER_RECORD = `
local room = redis.call('GET', ARGV[2] .. 'peer:' .. ARGV[1])
if not room then return false end
local peers = ARGV[2] .. 'peers:' .. room
local v = redis.call('HGET', peers, ARGV[1])
if not v then return false end
if ARGV[3] ~= '' then
  local head = string.match(v, '^(%d+\\t[^\\t]*\\t[^\\t]*\\t)')
  v = head .. ARGV[3]
  redis.call('HSET', peers, ARGV[1], v)
  redis.call('HINCRBY', ARGV[2] .. 'room:' .. room, 'pv', 1)
end
return {room, v}
`;

/**
 * KEYS: routing, room, peers, queue, reservations, marks, log. ARGV: cached routing version ('' for
 * none), cached peers version. Returns {v, pv, state, peers}: state is false when the caller's
 * version is current, {'log', changes} when the log holds every change since it (oldest first),
 * else {'full', seq, assignments, queue members, reservations hash, marks hash}; peers (the peers
 * hash) is false when the caller's peers version is current.
 */
export const READ_ROUTING = `
local v = redis.call('HGET', KEYS[1], 'v') or '0'
local pv = redis.call('HGET', KEYS[2], 'pv') or '0'
local st = false
if v ~= ARGV[1] then
  local behind = -1
  if ARGV[1] ~= '' then behind = tonumber(v) - tonumber(ARGV[1]) end
  if behind > 0 and behind <= redis.call('LLEN', KEYS[7]) then
    st = {'log', redis.call('LRANGE', KEYS[7], -behind, -1)}
  else
    st = {'full', redis.call('HGET', KEYS[1], 's') or '0', redis.call('HGET', KEYS[1], 'a') or '0',
      redis.call('ZRANGE', KEYS[4], 0, -1), redis.call('HGETALL', KEYS[5]), redis.call('HGETALL', KEYS[6])}
  end
end
local peers = false
if pv ~= ARGV[2] then peers = redis.call('HGETALL', KEYS[3]) end
return {v, pv, st, peers}
`;

/**
 * Compare-and-set of one routing change (redis-routing.ts makes it from the policy's new state).
 * KEYS: routing, room, due, queue, reservations, marks, log. ARGV: expected v, expected pv, next
 * deadline ('' for none), room id, the change as JSON (for the log), log length, seq, assignments,
 * then six counts (queue removed, queue set, reservations removed, reservations set, marks
 * removed, marks set) and the entries in that order: seq | seq, JSON | id | id, JSON | worker |
 * worker, n. Returns 1 written (or the room is gone), 0 conflict: re-read and run the step again.
 * A reservation keeps the order number it got when first written (field o counts them), so a
 * whole read lists reservations in the order they were made.
 */
export const APPLY_ROUTING = `
local v = redis.call('HGET', KEYS[1], 'v') or '0'
local pv = redis.call('HGET', KEYS[2], 'pv') or '0'
if v ~= ARGV[1] or pv ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 's', ARGV[7], 'a', ARGV[8])
local i = 15
for _ = 1, tonumber(ARGV[9]) do
  redis.call('ZREMRANGEBYSCORE', KEYS[4], ARGV[i], ARGV[i]); i = i + 1
end
for _ = 1, tonumber(ARGV[10]) do
  redis.call('ZREMRANGEBYSCORE', KEYS[4], ARGV[i], ARGV[i])
  redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2
end
for _ = 1, tonumber(ARGV[11]) do
  redis.call('HDEL', KEYS[5], ARGV[i]); i = i + 1
end
for _ = 1, tonumber(ARGV[12]) do
  local old = redis.call('HGET', KEYS[5], ARGV[i])
  local ord = old and string.match(old, '^(%d+)\\t')
  if not ord then ord = redis.call('HINCRBY', KEYS[1], 'o', 1) end
  redis.call('HSET', KEYS[5], ARGV[i], ord .. '\\t' .. ARGV[i + 1]); i = i + 2
end
for _ = 1, tonumber(ARGV[13]) do
  redis.call('HDEL', KEYS[6], ARGV[i]); i = i + 1
end
for _ = 1, tonumber(ARGV[14]) do
  redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2
end
redis.call('RPUSH', KEYS[7], ARGV[5])
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[6]), -1)
if ARGV[3] == '' then redis.call('ZREM', KEYS[3], ARGV[4]) else redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4]) end
return 1
`;
