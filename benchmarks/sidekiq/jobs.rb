# Job bodies of the Sidekiq side of `benchmarks/bench.py` (issue 7).
#
#   cd benchmarks/sidekiq && REDIS_URL=redis://127.0.0.1:PORT/0 sidekiq -r ./jobs.rb -c 10 -q default
#
# Each body mirrors a job of benchmarks/benchjobs.py; they write to the keys that
# benchmarks/sidekiq/adapter.rb reads. Redis access goes through `Sidekiq.redis`,
# the connection pool Sidekiq gives every job (what a Sidekiq user writes), except
# OneCallOwnJob's: a pool of its own, as a job that keeps its data in its own Redis has.
require "sidekiq"
require "connection_pool"

# redis-rb picks the last loaded connection driver: hiredis when the gem is there
# (Debian: ruby-hiredis), else the pure-Ruby driver. adapter.rb reports which.
begin
  require "hiredis"
  require "redis/connection/hiredis"
rescue LoadError
  nil
end

# Sidekiq 6.4.1 with redis-rb 4.8 prints a deprecation warning on every fetch.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module Bench
  RUNS_KEY = "bench:runs"
  LAT_KEY = "bench:lat"
  IO_KEY = "bench:io"

  # "start end" of each SleepJob, gathered here and written by one thread with one
  # RPUSH every 20 ms (as spanlog.py does for the Python systems): no Redis call per job.
  SPANS = []
  SPANS_LOCK = Mutex.new
  @span_writer = nil

  def self.add_span(started, ended)
    SPANS_LOCK.synchronize do
      SPANS << "#{started} #{ended}"
      @span_writer ||= Thread.new do
        loop do
          sleep 0.02
          batch = SPANS_LOCK.synchronize { SPANS.slice!(0, SPANS.size) }
          next if batch.empty?

          begin
            Sidekiq.redis { |c| c.rpush(IO_KEY, batch) }
          rescue StandardError => e # keep them for the next write; say why
            SPANS_LOCK.synchronize { SPANS.unshift(*batch) }
            warn "spanlog: RPUSH failed (#{e.message}); retrying"
          end
        end
      end
    end
  end

  # OneCallOwnJob's own Redis: a ConnectionPool of plain Redis.new clients (the way
  # Sidekiq's wiki says to share a Redis connection between job threads), one
  # connection per processor thread. Made on first use, when `-c` is known.
  OWN_LOCK = Mutex.new
  @own_pool = nil

  def self.own_redis(&block)
    pool = @own_pool || OWN_LOCK.synchronize do
      @own_pool ||= ConnectionPool.new(size: Sidekiq.options[:concurrency] || 10, timeout: 5) do
        Redis.new(url: ENV.fetch("REDIS_URL"))
      end
    end
    pool.with(&block)
  end

  def self.redis_driver
    Sidekiq.redis { |c| c._client.driver.name.split("::").last }
  rescue StandardError
    "unknown"
  end
end

Sidekiq.configure_server do |config|
  # roadie is measured with --log-level WARNING; Sidekiq would otherwise log two
  # INFO lines per job.
  config.logger.level = Logger::WARN
  # Sidekiq OSS adds to stat:processed only at its heartbeat, every 5 s, and has no
  # in-flight list: the no-op measure waits for stat:processed == N, so the
  # heartbeat runs every BENCH_BEAT_S seconds instead (a few commands each time).
  beat = ENV["BENCH_BEAT_S"]
  if beat
    Sidekiq::Launcher.send(:remove_const, :BEAT_PAUSE)
    Sidekiq::Launcher.const_set(:BEAT_PAUSE, Float(beat))
  end
end

class NoopJob
  include Sidekiq::Job

  def perform(_i)
  end
end

class OneCallJob
  include Sidekiq::Job

  def perform(i)
    Sidekiq.redis { |c| c.hincrby(Bench::RUNS_KEY, i.to_s, 1) }
  end
end

class OneCallOwnJob
  include Sidekiq::Job

  def perform(i)
    Bench.own_redis { |c| c.hincrby(Bench::RUNS_KEY, i.to_s, 1) }
  end
end

class SleepJob
  include Sidekiq::Job

  def perform(_i)
    started = Time.now.to_f
    sleep 0.01
    Bench.add_span(started, Time.now.to_f)
  end
end

class LatJob
  include Sidekiq::Job

  def perform(pushed_at)
    lat = Time.now.to_f - pushed_at
    Sidekiq.redis { |c| c.rpush(Bench::LAT_KEY, lat.to_s) }
  end
end
