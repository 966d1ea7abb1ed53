-- Argo CD health check for autolabel.dev/AutoLabelRun (Lua 5.1, as Argo CD's gopher-lua).
-- Install it under resource.customizations.health.autolabel.dev_AutoLabelRun in argocd-cm
-- (see deploy/argocd/argocd-cm.yaml). Mapping of status.phase:
--   Pending, Inferring, Finalizing, Discarding -> Progressing (the controller is working)
--   Review, Suspended                           -> Suspended   (waiting for people: review
--                                                  decisions and spec.finalize, or spec.suspend)
--   Finalized, Discarded                        -> Healthy     (done; nothing left to do)
--   Failed                                      -> Degraded    (status.message says why)
-- A status older than the spec (observedGeneration < generation) is Progressing.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the autolabel controller to validate the run"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. tostring(generation)
  return hs
end
local phase = status.phase
local detail = status.message
local function with_detail(text)
  if detail ~= nil and detail ~= "" then
    return text .. ": " .. detail
  end
  return text
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = with_detail("Failed")
elseif phase == "Finalized" or phase == "Discarded" then
  hs.status = "Healthy"
  hs.message = with_detail(phase)
elseif phase == "Review" then
  hs.status = "Suspended"
  local review = status.review
  if review ~= nil and review.total ~= nil then
    hs.message = "Review: " .. tostring(review.approved or 0) .. " of " .. tostring(review.total)
      .. " labels approved; set spec.finalize: true to keep them"
  else
    hs.message = "Review: waiting for approvals and spec.finalize"
  end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = with_detail("Suspended (spec.suspend: true)")
else
  hs.status = "Progressing"
  local progress = status.progress
  if progress ~= nil and progress.summary ~= nil then
    hs.message = phase .. " " .. progress.summary
  else
    hs.message = with_detail(phase)
  end
end
return hs
