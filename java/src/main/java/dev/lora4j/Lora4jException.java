package dev.lora4j;

/**
 * Base class of the exceptions lora4j throws for errors in its inputs (files, configuration,
 * templates, data) and in the native core. Unchecked, so that callers handle what they can and let
 * the rest propagate.
 */
public class Lora4jException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message what went wrong, with enough context (file, tensor, line) to act on it */
    public Lora4jException(String message) {
        super(message);
    }

    /**
     * @param message what went wrong
     * @param cause the underlying error
     */
    public Lora4jException(String message, Throwable cause) {
        super(message, cause);
    }
}
