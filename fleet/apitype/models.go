package apitype

// ModelUpload is the body of POST /api/v1/models/upload: the model file
// (base64 in JSON, so the call keeps the API's JSON-only CSRF rule) and
// the release's id and version.
type ModelUpload struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	Notes    string `json:"notes,omitempty"`
	FileName string `json:"file_name,omitempty"`
	Data     []byte `json:"data"`
}
