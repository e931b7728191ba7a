# Pushes jobs the way a Rails app would, for roadie's interop tests.
#
# Reads a JSON array of operations on stdin, runs them in order and prints one JSON
# array of results (the jids pushed) on stdout:
#
#   [{"op": "push", "class": "ResizeImage", "args": [1], "queue": "py"},
#    {"op": "push_bulk", "class": "ResizeImage", "args": [[2], [3]], "queue": "py"},
#    {"op": "perform_in", "class": "ResizeImage", "seconds": 1.5, "args": [4]},
#    {"op": "perform_at", "class": "ResizeImage", "at": 1795869053.5, "args": [5]},
#    {"op": "each", "class": ..., "args": [[6], [7]], ...}   # one Client.push per args
#    {"op": "activejob", "wrapper": "...", "wrapped": "Thumbnail", "arguments": [..]}]
require "sidekiq"
require "json"
require "securerandom"
require "time"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

# Classes implemented in Python. A Ruby app declares them like this to get
# perform_async / perform_in / perform_at with the right queue and options.
module PythonJobs
  def self.declare(name, queue)
    klass = Class.new do
      include Sidekiq::Job
    end
    klass.sidekiq_options("queue" => queue)
    Object.const_set(name, klass) unless Object.const_defined?(name)
    Object.const_get(name)
  end
end

def item_for(op)
  item = {"class" => op.fetch("class"), "args" => op.fetch("args", [])}
  item["queue"] = op["queue"] if op["queue"]
  op.fetch("options", {}).each { |k, v| item[k] = v }
  item
end

def activejob_payload(op)
  queue = op.fetch("queue", "default")
  # The shape Rails' ActiveJob adapter gives Sidekiq (SIDEKIQ-WIRE.md 3.4).
  serialized = {
    "job_class" => op.fetch("wrapped"),
    "job_id" => SecureRandom.uuid,
    "provider_job_id" => nil,
    "queue_name" => queue,
    "priority" => nil,
    "arguments" => op.fetch("arguments"),
    "executions" => 0,
    "exception_executions" => {},
    "locale" => "en",
    "timezone" => "UTC",
    "enqueued_at" => Time.now.utc.iso8601(6)
  }
  {"class" => op.fetch("wrapper"), "wrapped" => op.fetch("wrapped"), "queue" => queue,
   "args" => [serialized], "retry" => true}
end

ops = JSON.parse($stdin.read)
results = ops.map do |op|
  case op.fetch("op")
  when "push"
    Sidekiq::Client.push(item_for(op).merge(op["at"] ? {"at" => op["at"]} : {}))
  when "each"
    op.fetch("args").map { |a| Sidekiq::Client.push(item_for(op).merge("args" => a)) }
  when "push_bulk"
    Sidekiq::Client.push_bulk(item_for(op))
  when "perform_in"
    klass = PythonJobs.declare(op.fetch("class"), op.fetch("queue", "default"))
    op.fetch("args_list", [op.fetch("args", [])]).map { |a| klass.perform_in(op.fetch("seconds"), *a) }
  when "perform_at"
    klass = PythonJobs.declare(op.fetch("class"), op.fetch("queue", "default"))
    op.fetch("args_list", [op.fetch("args", [])]).map { |a| klass.perform_at(Time.at(op.fetch("at")), *a) }
  when "activejob"
    Sidekiq::Client.push(activejob_payload(op))
  else
    raise ArgumentError, "unknown op #{op["op"].inspect}"
  end
end
puts JSON.generate(results)
