// SPDX-License-Identifier: MIT
// Everything, with the Eigen backend. What most users include.
#pragma once

#include "core.hpp"

#include "backend/eigen.hpp"
