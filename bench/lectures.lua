-- wrk's script for the bench's closed-loop reads: each request takes the next path of the list
-- (BANC_CHEMINS, one a line, each thread from its own random place) with one header
-- (BANC_ENTETE, "Name: value", the Authorization bearer or the portal's session cookie).
-- At the end, one line "BANC-JSON {...}" for bench/wrk.py.

local chemins = {}
local fichier = assert(io.open(os.getenv("BANC_CHEMINS"), "r"))
for ligne in fichier:lines() do
  if ligne ~= "" then chemins[#chemins + 1] = ligne end
end
fichier:close()

local entete = os.getenv("BANC_ENTETE") or ""
local nom, valeur = entete:match("^([^:]+):%s*(.*)$")
if nom then wrk.headers[nom] = valeur end

local i = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  i = math.random(#chemins)
end

function request()
  i = i % #chemins + 1
  return wrk.format("GET", chemins[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BANC-JSON {"requetes": %d, "duree_us": %d, "octets": %d, "non_2xx": %d, ' ..
    '"erreurs_socket": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "moyenne_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
