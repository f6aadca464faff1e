#pragma once
// Shipping what the spool holds: transcripts whose upload was cut short
// (hoopd away, the run interrupted, the host rebooted).

#include <chrono>
#include <vector>

#include "host.h"
#include "transcript/recorder.h"

namespace hoop::ctl {

/// Ships every finished or abandoned transcript in the host's spool with the
/// host credential; sessions still being recorded are skipped.
Result<std::vector<transcript::SpoolShipResult>> ship_spooled(const Host& h, std::chrono::seconds per_session);

/// After `hoopctl run`'s own command: a quick pass over the spool, silent
/// unless something was shipped or refused.
void ship_leftovers(const Host& h);

}  // namespace hoop::ctl
