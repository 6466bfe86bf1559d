"""Conventional ECG measurements (rate, intervals, axis, per-lead ST/T and quality) from the
canonical 12-lead signal, and the compact text block that puts them in the prompt.

    from qheart.measurements import measure_ecg, measurement_text
    m = measure_ecg(signal)           # (12, 5000) mV at 500 Hz
    measurement_text(m)               # "Measured: heart rate 72 bpm; axis +45° (normal heart axis); ..."
"""

from qheart.measurements.measure import LeadMeasurement, MeasureConfig, Measurements, measure_ecg
from qheart.measurements.text import asked_measurement_text, feature_readings, measurement_text

__all__ = ["LeadMeasurement", "MeasureConfig", "Measurements", "asked_measurement_text",
           "feature_readings", "measure_ecg", "measurement_text"]
