// im2col and col2im for NVIDIA GPUs, compiled at run time by NVRTC (see cuda.rs).
// Index math in 64 bits: a patch matrix can pass 2^31 elements.
extern "C" __global__ void logogan_im2col_f32(
    const float* x, float* out,
    int batch, int channels, int height, int width, int k, int stride, int pad, int ho, int wo,
    long long sb, long long sc)
{
    // out: (C·k·k, B·Ho·Wo); row (c, ki, kj), column (b, i, j).
    long long columns = (long long)batch * ho * wo;
    long long n = (long long)channels * k * k * columns;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        long long col = idx % columns, row = idx / columns;
        int j = (int)(col % wo), i = (int)((col / wo) % ho), b = (int)(col / ((long long)wo * ho));
        int kj = (int)(row % k), ki = (int)((row / k) % k), c = (int)(row / ((long long)k * k));
        int y = i * stride + ki - pad, xx = j * stride + kj - pad;
        float v = 0.0f;
        if (y >= 0 && y < height && xx >= 0 && xx < width)
            v = x[b * sb + c * sc + (long long)y * width + xx];
        out[idx] = v;
    }
}

extern "C" __global__ void logogan_col2im_f32(
    const float* cols, float* out,
    int batch, int channels, int height, int width, int k, int stride, int pad, int ho, int wo)
{
    // out: channel-major (C, B, H, W); each pixel sums the patch entries taken from it.
    long long columns = (long long)batch * ho * wo;
    long long n = (long long)channels * batch * height * width;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
         idx += (long long)gridDim.x * blockDim.x) {
        int xx = (int)(idx % width), y = (int)((idx / width) % height);
        int b = (int)((idx / ((long long)width * height)) % batch);
        int c = (int)(idx / ((long long)width * height * batch));
        float acc = 0.0f;
        for (int ki = 0; ki < k; ++ki) {
            int ty = y + pad - ki;
            if (ty < 0 || ty % stride != 0 || ty / stride >= ho) continue;
            int i = ty / stride;
            for (int kj = 0; kj < k; ++kj) {
                int tx = xx + pad - kj;
                if (tx < 0 || tx % stride != 0 || tx / stride >= wo) continue;
                int j = tx / stride;
                acc += cols[((long long)(c * k + ki) * k + kj) * columns + ((long long)b * ho + i) * wo + j];
            }
        }
        out[idx] = acc;
    }
}
