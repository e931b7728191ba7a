# Jobs run by a real Sidekiq process in roadie's interop tests:
#
#   cd tests/interop/ruby && REDIS_URL=redis://... sidekiq -r ./jobs.rb -q interop_rb -c 5
#
# Every job records what it did in Redis (keys under "interop:"), so the Python
# test can count runs exactly and compare the arguments Ruby received.
require "sidekiq"
require "json"

# Sidekiq 6.4.1 with redis-rb 4.8 warns about deprecated call forms on every
# fetch (fixed upstream in 6.5.6); the noise would bury the useful log lines.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server do |config|
  # Poll schedule/retry often so that tests wait seconds, not the default 5-15.
  config.options[:poll_interval_average] = Float(ENV.fetch("INTEROP_POLL_S", "0.5"))
  config.logger.level = Logger.const_get(ENV.fetch("INTEROP_LOG_LEVEL", "INFO"))
end

module Interop
  def self.record(label, args, jid)
    Sidekiq.redis do |c|
      c.multi do |t|
        t.hincrby("interop:rb:ran", label.to_s, 1)
        t.hset("interop:rb:args", label.to_s, JSON.generate(args))
        t.hset("interop:rb:jid", label.to_s, jid)
        t.hset("interop:rb:ran_at", label.to_s, Time.now.to_f.to_s)
      end
    end
  end
end

# The job roadie pushes by name: roadie.push("HardJob", args=[label, ...]).
class HardJob
  include Sidekiq::Job

  def perform(label, *rest)
    Interop.record(label, [label, *rest], jid)
  end
end

# Always fails; counts its attempts first. Retries go to the retry set.
class FailJob
  include Sidekiq::Job
  sidekiq_options retry: 3, backtrace: 5

  def perform(label)
    Sidekiq.redis { |c| c.hincrby("interop:rb:attempts", label.to_s, 1) }
    raise ArgumentError, "boom #{label}"
  end
end

# retry: 0 sends a failed job straight to the dead set (0 is truthy in Ruby).
class DeadJob
  include Sidekiq::Job
  sidekiq_options retry: 0

  def perform(label)
    raise "dead on arrival #{label}"
  end
end

# Runs until the test creates "interop:release:<label>" (at most 60 s), so that
# the test can look at a job while it is running.
class BlockJob
  include Sidekiq::Job

  def perform(label)
    Sidekiq.redis { |c| c.hset("interop:rb:started", label.to_s, jid) }
    deadline = Time.now + 60
    until Time.now > deadline
      break if Sidekiq.redis { |c| c.exists?("interop:release:#{label}") }
      sleep 0.05
    end
    Interop.record(label, [label], jid)
  end
end
