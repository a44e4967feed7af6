#include "trace/trace-hw_misc_llmdev.h"
