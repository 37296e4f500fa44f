-- Runtime state shared by inkling's modules (also reachable as require('inkling')._state).
return {
  client_id = nil,
  enabled = true,
  status = { state = 'stopped', message = nil },
  progress = nil, -- model-load percentage while loading
  stats = nil, -- last inkling/completionStats params
  timer = nil,
  req = nil, -- { client_id, id }
  seq = 0,
  suggestion = nil,
  native = false,
}
