"""Every call to a language model goes through here: one `Model` protocol, a registry of
`"provider:model"` names, the embedded local model, structured output, tool calling, usage."""
