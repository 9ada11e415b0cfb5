-- A 10240-byte POST body on every request (the echo10k app sends it back).
wrk.method = "POST"
wrk.body = string.rep("p", 10240)
wrk.headers["Content-Type"] = "application/octet-stream"
