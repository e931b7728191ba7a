#!/usr/bin/env ruby
# Sidekiq adapter of benchmarks/bench.py (the adapter contract is in docs/performance.md):
#
#   ruby benchmarks/sidekiq/adapter.rb --redis-url redis://127.0.0.1:PORT/0 \
#     --workload onecall --jobs 100000 --concurrency 10 --processes 1 --timeout 600
#
# Workers are real `sidekiq -r ./jobs.rb` processes (P separate processes when P > 1:
# Sidekiq OSS has no forking supervisor). Jobs are pushed with Sidekiq::Client.
# Prints one JSON object as the last line of stdout; everything else goes to stderr.
# Every sidekiq process started here is killed in an `ensure` block.
require "json"
require "optparse"
require "rbconfig"

HERE = File.expand_path(__dir__)
WORKLOADS = %w[push-single push-bulk noop onecall onecall-own ceiling io-sync io-async lat1 lat3
               memory].freeze

class BenchError < StandardError; end

def log(msg)
  $stderr.puts("[sidekiq-adapter #{Time.now.strftime('%H:%M:%S')}] #{msg}")
end

def mono
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

opts = { jobs: 100_000, concurrency: 10, processes: 1, timeout: 600.0 }
OptionParser.new do |o|
  o.banner = "usage: ruby adapter.rb --redis-url URL --workload W [options]"
  o.on("--redis-url URL") { |v| opts[:url] = v }
  o.on("--workload W", WORKLOADS) { |v| opts[:workload] = v }
  o.on("--jobs N", Integer) { |v| opts[:jobs] = v }
  o.on("--concurrency C", Integer) { |v| opts[:concurrency] = v }
  o.on("--processes P", Integer) { |v| opts[:processes] = v }
  o.on("--timeout S", Float) { |v| opts[:timeout] = v }
end.parse!(ARGV)
unless opts[:url] && opts[:workload]
  abort("adapter.rb: --redis-url and --workload are required (workloads: #{WORKLOADS.join(', ')})")
end
if opts[:jobs] < 1 || opts[:concurrency] < 1 || opts[:processes] < 1
  abort("adapter.rb: --jobs, --concurrency and --processes must be >= 1")
end

ENV["REDIS_URL"] = opts[:url]
require_relative "jobs"

# One child `sidekiq` process per worker process; all of them killed by #kill_all.
class Workers
  attr_reader :pids

  def initialize(count, concurrency, queues, env, tag)
    @count, @concurrency, @queues, @env, @tag = count, concurrency, queues, env, tag
    @pids = []
    @exited = {}
    @logs = []
  end

  def argv
    q = @queues.flat_map { |name| ["-q", name] }
    [ENV.fetch("SIDEKIQ_BIN", "sidekiq"), "-r", "./jobs.rb", "-c", @concurrency.to_s, "-t", "5", *q]
  end

  def spawn_all
    t0 = mono
    @count.times do |i|
      path = File.join(Dir.tmpdir, "bench-sidekiq-#{Process.pid}-#{@tag}-#{i}.log")
      @logs << path
      @pids << Process.spawn(@env, *argv, chdir: HERE, in: File::NULL, out: path, err: [:child, :out],
                             pgroup: true)
    end
    t0
  end

  def tail(lines = 12)
    @logs.map { |p| File.exist?(p) ? File.readlines(p).last(lines).join : "" }.join("\n")
  end

  def reap
    @pids.each do |pid|
      next if @exited.key?(pid)
      got = Process.waitpid(pid, Process::WNOHANG)
      @exited[pid] = $?.exitstatus if got
    end
  end

  def alive_or_raise(what)
    reap
    return if @exited.empty?
    raise BenchError, "sidekiq exited (#{@exited.inspect}) while #{what}; log tail:\n#{tail}"
  end

  # Until every process's identity (host:pid:hex) is in the `processes` set.
  def wait_ready(redis, deadline)
    loop do
      members = redis.smembers("processes")
      return mono if @pids.all? { |pid| members.any? { |m| m.include?(":#{pid}:") } }
      alive_or_raise("starting")
      raise BenchError, "sidekiq did not start in time:\n#{tail}" if mono > deadline
      sleep 0.005
    end
  end

  def rss_kb
    @pids.sum do |pid|
      line = File.readlines("/proc/#{pid}/status").find { |l| l.start_with?("VmRSS:") }
      line ? line.split[1].to_i : 0
    rescue SystemCallError
      0
    end
  end

  # TERM (Sidekiq stops, flushing its stats), then KILL what is left.
  def stop(timeout = 20.0)
    signal_all("TERM")
    deadline = mono + timeout
    loop do
      reap
      break if @exited.size == @pids.size
      if mono > deadline
        log("sidekiq did not stop within #{timeout} s of TERM; killing")
        break
      end
      sleep 0.01
    end
  ensure
    kill_all
  end

  def kill_all
    reap
    left = @pids.reject { |pid| @exited.key?(pid) }
    left.each { |pid| Process.kill("KILL", -pid) rescue Process.kill("KILL", pid) rescue nil }
    left.each do |pid|
      Process.waitpid(pid)
      @exited[pid] = :killed
    rescue SystemCallError
      nil
    end
    @logs.each { |p| File.delete(p) if File.exist?(p) } if @exited.values.all? { |s| s == 0 || s == :killed }
  end

  private

  def signal_all(sig)
    @pids.each do |pid|
      Process.kill(sig, pid) unless @exited.key?(pid)
    rescue SystemCallError
      nil
    end
  end
end

require "tmpdir"

class Adapter
  def initialize(opts)
    @o = opts
    @n = opts[:jobs]
    @c = opts[:concurrency]
    @p = opts[:processes]
    @deadline = mono + opts[:timeout]
    @r = Redis.new(url: opts[:url])
    @notes = []
    @workers = []
  end

  def deadline_check(what)
    raise BenchError, "timed out (--timeout #{@o[:timeout]}) while #{what}" if mono > @deadline
  end

  def workers(queues = ["default"], count: @p, env: {})
    w = Workers.new(count, @c, queues, { "REDIS_URL" => @o[:url] }.merge(env), @o[:workload])
    @workers << w
    w
  end

  def cleanup
    @workers.each(&:kill_all)
  end

  def push_bulk(klass, args, queue: "default")
    args.each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => klass, "args" => slice, "queue" => queue) }
  end

  def base
    { "system" => "sidekiq", "version" => Sidekiq::VERSION, "workload" => @o[:workload], "jobs" => @n,
      "concurrency" => @c, "processes" => @p }
  end

  def run
    res = send("w_#{@o[:workload].tr('-', '_')}")
    driver = Bench.redis_driver
    @notes.unshift("Sidekiq #{Sidekiq::VERSION} OSS, Ruby #{RUBY_VERSION}, redis-rb #{Redis::VERSION} " \
                   "(driver: #{driver}); job Redis calls via Sidekiq.redis (the pool, size C+5), " \
                   "onecall-own's via a ConnectionPool (size C) of its own Redis.new clients; " \
                   "log level WARN")
    base.merge(res).merge("notes" => @notes.join("; "))
  end

  # --- workloads ------------------------------------------------------------
  def w_push_single
    t0 = mono
    @n.times { |i| NoopJob.perform_async(i) }
    secs = mono - t0
    check_queue(@n)
    @notes << "NoopJob.perform_async(i), one call per job"
    { "seconds" => secs, "jobs_per_s" => @n / secs }
  end

  def w_push_bulk
    args = Array.new(@n) { |i| [i] }
    t0 = mono
    push_bulk(NoopJob, args)
    secs = mono - t0
    check_queue(@n)
    @notes << "Sidekiq::Client.push_bulk, batches of 1,000 (Sidekiq's advice)"
    { "seconds" => secs, "jobs_per_s" => @n / secs, "bulk" => true }
  end

  def check_queue(n)
    got = @r.llen("queue:default")
    raise BenchError, "queue:default has #{got} jobs, pushed #{n}" unless got == n
  end

  def w_noop
    push_bulk(NoopJob, Array.new(@n) { |i| [i] })
    beat = 0.05
    w = workers(env: { "BENCH_BEAT_S" => beat.to_s })
    t0 = w.spawn_all
    ready = w.wait_ready(@r, @deadline)
    empty_at = nil
    done = nil
    loop do
      queued, processed = @r.pipelined { |p| p.llen("queue:default"); p.get("stat:processed") }
      now = mono
      empty_at ||= now if queued.zero?
      if queued.zero? && processed.to_i >= @n
        done = now
        break
      end
      w.alive_or_raise("draining")
      deadline_check("draining (#{queued} queued, stat:processed #{processed.to_i})")
      sleep 0.005
    end
    w.stop
    final = @r.get("stat:processed").to_i
    @notes << "drained = queue empty and stat:processed == N (Sidekiq OSS has no in-flight list; " \
              "stat:processed is flushed at each heartbeat, made every #{beat} s here instead of 5 s, " \
              "so the end is known within ~#{(beat * 1000).round} ms)"
    @notes << "stat:processed after stop is #{final}, expected #{@n}" if final != @n
    { "seconds" => done - t0, "jobs_per_s" => @n / (done - t0), "seconds_after_ready" => done - ready,
      "startup_s" => ready - t0, "queue_empty_s" => empty_at - t0, "processed" => final }
  end

  def wait_hash(w, n, what)
    loop do
      return mono if @r.hlen(Bench::RUNS_KEY) >= n && @r.hvals(Bench::RUNS_KEY).sum(&:to_i) >= n
      w.alive_or_raise(what)
      deadline_check("#{what} (#{@r.hlen(Bench::RUNS_KEY)} of #{n} ran)")
      sleep 0.005
    end
  end

  def w_onecall
    onecall(OneCallJob)
  end

  def w_onecall_own
    onecall(OneCallOwnJob)
  end

  def onecall(klass)
    push_bulk(klass, Array.new(@n) { |i| [i] })
    w = workers
    t0 = w.spawn_all
    ready = w.wait_ready(@r, @deadline)
    done = wait_hash(w, @n, "running one-call jobs")
    w.stop
    ran = @r.hlen(Bench::RUNS_KEY)
    dupes = @r.hvals(Bench::RUNS_KEY).sum(&:to_i) - ran
    { "seconds" => done - t0, "jobs_per_s" => @n / (done - t0), "seconds_after_ready" => done - ready,
      "startup_s" => ready - t0, "ran" => ran, "duplicates" => dupes }
  end

  # Both one-call bodies in a plain loop: Sidekiq.redis's, then the own pool's.
  def w_ceiling
    secs = loop_seconds(OneCallJob.new)
    own_secs = loop_seconds(OneCallOwnJob.new)
    @notes << "OneCallJob#perform (Sidekiq.redis + HINCRBY), then OneCallOwnJob#perform (own " \
              "ConnectionPool + HINCRBY), in a plain loop, 1 thread, no queue"
    { "seconds" => secs, "jobs_per_s" => @n / secs, "own_seconds" => own_secs,
      "own_jobs_per_s" => @n / own_secs, "concurrency" => 1, "processes" => 1 }
  end

  def loop_seconds(job)
    job.perform(-1) # connect outside the timed loop
    @r.del(Bench::RUNS_KEY)
    t0 = mono
    @n.times { |i| job.perform(i) }
    secs = mono - t0
    ran = @r.hlen(Bench::RUNS_KEY)
    raise BenchError, "ceiling loop of #{job.class} recorded #{ran} runs, expected #{@n}" unless ran == @n
    secs
  end

  def w_io_sync
    count = 2000
    push_bulk(SleepJob, Array.new(count) { |i| [i] })
    w = workers
    t0 = w.spawn_all
    loop do
      break if @r.llen(Bench::IO_KEY) >= count
      w.alive_or_raise("running sleep jobs")
      deadline_check("running sleep jobs")
      sleep 0.005
    end
    done = mono
    w.stop
    spans = @r.lrange(Bench::IO_KEY, 0, -1).map { |s| s.split.map(&:to_f) }
    secs = spans.map(&:last).max - spans.map(&:first).min
    ideal = count * 0.010 / (@c * @p)
    @notes << "SleepJob: sleep 0.01 (blocking), 2,000 jobs, start/end written in batches " \
              "every 20 ms; ideal = 2000*0.01/(C*P)"
    { "jobs" => count, "seconds" => secs, "jobs_per_s" => count / secs, "seconds_from_spawn" => done - t0,
      "ideal_s" => ideal, "vs_ideal" => secs / ideal }
  end

  def w_io_async
    { "skipped" => "Sidekiq has no async (fiber/event-loop) jobs; every job runs on a thread" }
  end

  def latency(queues, push_to)
    count = 500
    every = 0.010
    w = workers(queues)
    w.spawn_all
    w.wait_ready(@r, @deadline)
    sleep 3.0 # idle: every processor is blocked in BRPOP by then
    t0 = mono
    count.times do |i|
      delay = t0 + i * every - mono
      sleep delay if delay > 0
      Sidekiq::Client.push("class" => LatJob, "queue" => push_to, "args" => [Time.now.to_f])
    end
    loop do
      break if @r.llen(Bench::LAT_KEY) >= count
      w.alive_or_raise("running latency jobs")
      deadline_check("running latency jobs")
      sleep 0.01
    end
    w.stop
    v = @r.lrange(Bench::LAT_KEY, 0, -1).map { |s| s.to_f * 1000 }.sort
    pct = ->(q) { v[[(q * v.size).ceil, 1].max - 1] }
    @notes << "#{count} LatJob pushed every 10 ms to #{push_to} (worker: #{queues.map { |q| "-q #{q}" }.join(' ')}, " \
              "strict order); latency = Time.now at perform start - push time"
    { "jobs" => count, "p50_ms" => pct.call(0.50), "p99_ms" => pct.call(0.99), "max_ms" => v.last }
  end

  def w_lat1
    latency(["default"], "default")
  end

  def w_lat3
    latency(%w[a b c], "c")
  end

  def w_memory
    first_at = [10_000, @n].min
    push_bulk(OneCallJob, Array.new(@n) { |i| [i] })
    w = workers(count: 1)
    t0 = w.spawn_all
    first = nil
    loop do
      ran = @r.hlen(Bench::RUNS_KEY)
      first ||= w.rss_kb if ran >= first_at
      break if ran >= @n
      w.alive_or_raise("running memory jobs")
      deadline_check("running memory jobs (#{ran} of #{@n})")
      sleep 0.005
    end
    done = mono
    last = w.rss_kb
    w.stop
    @notes << "RSS (VmRSS) of the one sidekiq process after #{first_at} and after all jobs"
    { "processes" => 1, "seconds" => done - t0, "jobs_per_s" => @n / (done - t0), "rss_kb_first" => first,
      "rss_kb_end" => last, "rss_growth" => last.to_f / first }
  end
end

adapter = Adapter.new(opts)
begin
  result = adapter.run
  $stdout.puts(JSON.generate(result))
  exit 0
rescue BenchError, Redis::BaseError, SystemCallError => e
  $stderr.puts("sidekiq adapter, #{opts[:workload]}: #{e.class}: #{e.message}")
  exit 1
ensure
  adapter.cleanup
end
