#include <stdio.h>
#include <editline/readline.h>

// Swift 6 rejects writing imported C globals; set them here.
static inline void msb_editline_disable_completion(void) {
    // Tab inserts itself instead of completing host file names (the guest's differ).
    rl_bind_key('\t', rl_insert);
}
static inline void msb_editline_no_signal_handlers(void) { rl_catch_signals = 0; }
