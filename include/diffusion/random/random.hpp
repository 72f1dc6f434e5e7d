// SPDX-License-Identifier: MIT
// The noise layer: Philox4x32-10, the uniform and Box-Muller transforms, and the three noise sources
// (counter-based philox_noise, engine_noise over a standard engine, replay_noise of given arrays).
#pragma once

#include "philox.hpp"
#include "normal.hpp"
#include "philox_noise.hpp"
#include "engine_noise.hpp"
#include "replay_noise.hpp"
