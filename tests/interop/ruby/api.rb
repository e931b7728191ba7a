# Reads and steers Redis through Sidekiq's own API, for roadie's interop tests.
#
# Reads a JSON array of operations on stdin and prints one JSON array of results:
#
#   [{"op": "processes"}, {"op": "workers"}, {"op": "stats"}, {"op": "history", "days": 2},
#    {"op": "set", "name": "retry"|"dead"|"schedule"}, {"op": "queue", "name": "default"},
#    {"op": "retry"|"delete"|"kill"|"add_to_queue", "set": "retry", "jid": "..."},
#    {"op": "quiet"|"stop", "identity": "..."}]
#
# What it prints is what Sidekiq's Web UI would show: the test compares it with
# what roadie wrote.
require "sidekiq"
require "sidekiq/api"
require "json"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

SETS = {
  "retry" => Sidekiq::RetrySet,
  "dead" => Sidekiq::DeadSet,
  "schedule" => Sidekiq::ScheduledSet
}.freeze

def job_json(record)
  {
    "jid" => record.jid,
    "class" => record.klass,
    "display_class" => record.display_class,
    "args" => record.args,
    "display_args" => record.display_args,
    "queue" => record.queue,
    "enqueued_at" => record.enqueued_at&.to_f,
    "created_at" => record.created_at&.to_f,
    "latency" => record.latency
  }
end

def entry_json(entry)
  job_json(entry).merge(
    "score" => entry.score,
    "at" => entry.at.to_f,
    "error_class" => entry["error_class"],
    "error_message" => entry["error_message"],
    "retry_count" => entry["retry_count"],
    "failed_at" => entry["failed_at"],
    "retried_at" => entry["retried_at"],
    "error_backtrace" => entry.error_backtrace,
    "error?" => entry.error?
  )
end

def process_json(process)
  {
    "identity" => process.identity,
    "hostname" => process["hostname"],
    "pid" => process["pid"],
    "tag" => process.tag,
    "labels" => process.labels,
    "started_at" => process["started_at"],
    "concurrency" => process["concurrency"],
    "busy" => process["busy"],
    "beat" => process["beat"],
    "quiet" => process["quiet"],
    "stopping" => process.stopping?,
    "rss" => process["rss"],
    "queues" => process.queues,
    "version" => process["version"]
  }
end

def find_entry(op)
  set = SETS.fetch(op.fetch("set")).new
  entry = set.find_job(op.fetch("jid"))
  raise "no #{op["set"]} entry with jid #{op["jid"]}" unless entry
  entry
end

def find_process(identity)
  process = Sidekiq::ProcessSet.new.find { |p| p.identity == identity }
  raise "no live process #{identity}" unless process
  process
end

ops = JSON.parse($stdin.read)
results = ops.map do |op|
  case op.fetch("op")
  when "processes"
    Sidekiq::ProcessSet.new.map { |p| process_json(p) }
  when "process_count"
    ps = Sidekiq::ProcessSet.new
    {"size" => ps.size, "total_concurrency" => ps.total_concurrency}
  when "workers"
    Sidekiq::Workers.new.map do |process_id, tid, work|
      payload = work["payload"]
      {"process" => process_id, "tid" => tid, "queue" => work["queue"], "run_at" => work["run_at"],
       "jid" => payload["jid"], "class" => payload["class"], "args" => payload["args"]}
    end
  when "workers_size"
    Sidekiq::Workers.new.size
  when "stats"
    s = Sidekiq::Stats.new
    {"processed" => s.processed, "failed" => s.failed, "scheduled_size" => s.scheduled_size,
     "retry_size" => s.retry_size, "dead_size" => s.dead_size, "enqueued" => s.enqueued,
     "processes_size" => s.processes_size, "workers_size" => s.workers_size,
     "default_queue_latency" => s.default_queue_latency, "queues" => s.queues}
  when "history"
    h = Sidekiq::Stats::History.new(op.fetch("days", 1))
    {"processed" => h.processed, "failed" => h.failed}
  when "set"
    SETS.fetch(op.fetch("name")).new.map { |e| entry_json(e) }
  when "queue"
    q = Sidekiq::Queue.new(op.fetch("name"))
    {"size" => q.size, "latency" => q.latency, "jobs" => q.map { |j| job_json(j) }}
  when "retry"
    find_entry(op).retry
    true
  when "add_to_queue"
    find_entry(op).add_to_queue
    true
  when "delete"
    find_entry(op).delete
  when "kill"
    find_entry(op).kill
    true
  when "quiet"
    find_process(op.fetch("identity")).quiet!
    true
  when "stop"
    find_process(op.fetch("identity")).stop!
    true
  else
    raise ArgumentError, "unknown op #{op["op"].inspect}"
  end
end
puts JSON.generate(results)
