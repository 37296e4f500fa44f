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
  asked = nil, -- { bufnr, tick, row, col } of the last inline completion request (fallback client)
  dismissed = nil, -- { bufnr, tick, row, col } where the user last dismissed a suggestion
  native = false,
}
