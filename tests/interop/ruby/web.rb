# Renders pages of Sidekiq's own Web UI (a Rack app, called in-process) for roadie's
# interop tests: what a Rails team sees on its dashboard when roadie shares its Redis.
#
# Reads a JSON array of paths on stdin ("/busy", "/retries/<score>-<jid>", ...) and
# prints one JSON array of {"status": ..., "text": ...}, the text being the page with
# its tags and scripts removed.
require "sidekiq"
require "sidekiq/web"
require "rack/mock"
require "rack/session/cookie"
require "json"
require "cgi"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

app = Rack::Builder.new do
  use Rack::Session::Cookie, secret: "interop" * 10, same_site: true, max_age: 3600
  run Sidekiq::Web
end

paths = JSON.parse($stdin.read)
results = paths.map do |path|
  res = Rack::MockRequest.new(app).get(path)
  text = res.body.gsub(%r{<script.*?</script>}m, " ").gsub(/<[^>]+>/, " ")
  {"status" => res.status, "text" => CGI.unescapeHTML(text).split.join(" ")}
end
puts JSON.generate(results)
